"""make bench-decode: seqkd's search, fp32 and int8, against OpenNMT-py's translate on the same trained model shape.

Both tools train a 2x500 model for the same number of updates on the same pieces (1,200 by default: full-length
output), then decode the multi30k test set greedy and with beam 5 at each batch size, alternating the tools round
by round. Both use the length limit 1.25 x source length + 5 and length normalization score / length (OpenNMT-py's
defaults, as the peer harness runs it). Every row has its BLEU; seqkd also reports its decoder's achieved GFLOP/s
(fp32) next to a plain matrix product's.

int8 also runs with a vocabulary shortlist (`seqkd shortlist` on the bench's training pairs with its defaults,
chosen on the validation set: the 500 most frequent target pieces and 10 per source piece; seqkd.shortlist), a row
of its own with its BLEU.

Whole file: `seqkd translate` on the test file as a user runs it (process start and model load included, sorted
by length), fp32, int8 and int8 with the shortlist, against `onmt_translate`, each tool at its fastest of the batch
sizes, timed the same way (the peer harness's /usr/bin/time). Results: runs/bench/decode.{json,md}.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import sacrebleu

from pipeline.bench_common import (check_peers, machine, median, parser, peer_run, prepare_args, prepare_seqkd_data,
                                   seqkd_train)
from pipeline.common import entry
from seqkd import io
from seqkd import shortlist as shortlists
from seqkd.checkpoint import load_model
from seqkd.data import load_split
from seqkd.inference import quantize, save_int8
from seqkd.prepare import read_lines
from seqkd.search import translate_ids
from seqkd.speed import matmul_gflops, time_decode

SEARCH = dict(alpha=1.0, max_len_a=1.25, max_len_b=5)
TOOLS = ("seqkd fp32", "seqkd int8", "seqkd int8 shortlist", "OpenNMT-py")
OURS = TOOLS[:3]


def seqkd_decode(model, sources, refs, tgt_vocab, beam: int, batch: int, shortlist=None) -> dict:
    if shortlist is None:
        speed, hyps = time_decode(model, sources, beam=beam, batch_size=batch, passes=1, **SEARCH)
        row = {"sent_per_s": speed.sent_per_s, "tok_per_s": speed.tok_per_s, "seconds": speed.seconds,
               "gflops": speed.gflops, "matmul_gflops": matmul_gflops(0.3), "mean_len": speed.tokens / speed.sentences,
               "other_cores": speed.other_cores}
    else:  # the same warm-up batch and one timed pass as time_decode (which counts FLOPs on the full vocabulary)
        translate_ids(model, sources[:batch], beam=beam, batch_size=batch, shortlist=shortlist, **SEARCH)
        started = time.perf_counter()
        hyps = translate_ids(model, sources, beam=beam, batch_size=batch, shortlist=shortlist, **SEARCH)
        seconds = time.perf_counter() - started
        tokens = sum(len(h[0].tokens) for h in hyps)
        row = {"sent_per_s": len(sources) / seconds, "tok_per_s": tokens / seconds, "seconds": seconds,
               "mean_len": tokens / len(sources)}
    text = [tgt_vocab.decode(h[0].tokens) for h in hyps]
    return {"beam": beam, "batch": batch, **row, "bleu": sacrebleu.corpus_bleu(text, [refs]).score}


def whole_file(checkpoint: Path, src: Path, refs: list[str], beam: int, batch: int, out: Path,
               shortlist: Path | None = None) -> dict:
    """`seqkd translate` on the whole test file as a command: sentences/s of the whole process."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pipeline.cli", "translate", "--checkpoint", str(checkpoint), "--input",
                    str(src), "--output", str(out), "--beam", str(beam), "--alpha", "1.0", "--max_len_a", "1.25",
                    "--max_len_b", "5", "--batch_size", str(batch), "--device", "cpu",
                    *(["--shortlist", str(shortlist)] if shortlist else [])], check=True, capture_output=True)
    seconds = time.perf_counter() - started
    hyps = out.read_text(encoding="utf-8").splitlines()
    return {"beam": beam, "batch": batch, "seconds": seconds, "e2e_sent_per_s": len(hyps) / seconds,
            "bleu": sacrebleu.corpus_bleu(hyps, [refs]).score}


def run(argv: list[str]) -> int:
    p = parser("python -m pipeline.bench_decode", __doc__, steps=1200)
    p.add_argument("--batches", default="1,32,64,128", help="batch sizes in sentences")
    args = prepare_args(p.parse_args(argv))
    check_peers(args)
    batches = [int(b) for b in args.batches.split(",")]
    # 1. train both models once (OpenNMT-py through the harness, which also prepares the shared pieces)
    if not (args.work / "onmt" / f"model_step_{args.steps}.pt").exists():
        peer_run(args, args.out / "onmt-decode-train", steps=args.steps, train_repeats=1, decode_repeats=0, batch=64)
    data_dir = prepare_seqkd_data(args)
    ours = args.out / f"seqkd-{args.steps}"
    if not (ours / "last.pt").exists():
        seqkd_train(args, data_dir, ours, args.steps)
    model, _, tgt_vocab, state = load_model(ours / "last.pt")
    int8 = quantize(model)
    save_int8(ours / "int8.pt", int8, state["vocab"])
    shortlist_path = ours / "shortlist.pt"
    subprocess.run([sys.executable, "-m", "pipeline.cli", "shortlist", "--data_dir", str(data_dir), "--out",
                    str(shortlist_path)], check=True)
    shortlist = shortlists.load(shortlist_path)
    test = load_split(data_dir, "test")
    sources = [test.src[i] for i in range(len(test))]
    refs = read_lines(data_dir / "test.de")

    # 2. decode in memory, alternating the tools round by round
    runs = []
    for r in range(1, args.rounds + 1):
        for batch in batches:
            for beam in (1, 5):
                for tool, m, short in (("seqkd fp32", model, None), ("seqkd int8", int8, None),
                                       ("seqkd int8 shortlist", int8, shortlist)):
                    row = {"round": r, "tool": tool, **seqkd_decode(m, sources, refs, tgt_vocab, beam, batch, short)}
                    runs.append(row)
                    print(f"round {r} batch {batch} beam {beam}: {tool} {row['sent_per_s']:.1f} sent/s, "
                          f"BLEU {row['bleu']:.2f}", flush=True)
            for x in peer_run(args, args.out / f"onmt-decode-b{batch}-r{r}", steps=args.steps, train_repeats=0,
                              decode_repeats=1, batch=batch):
                if x["task"] in ("greedy", "beam5") and x.get("sent_per_s"):
                    runs.append({"round": r, "tool": "OpenNMT-py", "beam": 1 if x["task"] == "greedy" else 5,
                                 "batch": batch, "sent_per_s": float(x["sent_per_s"]),
                                 "tok_per_s": float(x["tok_per_s"]), "seconds": float(x["internal_s"]),
                                 "bleu": float(x["bleu"]), "e2e_sent_per_s": float(x["e2e_sent_per_s"])})
                    print(f"round {r} batch {batch} {x['task']}: OpenNMT-py {runs[-1]['sent_per_s']:.1f} sent/s",
                          flush=True)
        # 3. the whole file as a command, at each batch size (as OpenNMT-py's, of which the best counts)
        for tool, ckpt, short in (("seqkd fp32", ours / "last.pt", None), ("seqkd int8", ours / "int8.pt", None),
                                  ("seqkd int8 shortlist", ours / "int8.pt", shortlist_path)):
            for beam in (1, 5):
                for batch in batches:
                    row = whole_file(ckpt, data_dir / "test.en", refs, beam, batch, args.out / f"whole-{beam}.txt",
                                     short)
                    runs.append({"round": r, "tool": tool, "whole_file": True, **row})
                    print(f"round {r} whole file beam {beam} batch {batch}: {tool} {row['e2e_sent_per_s']:.1f} "
                          f"sent/s", flush=True)
    return write(args, runs, batches)


def write(args, runs: list[dict], batches: list[int]) -> int:
    def pick(tool, beam, batch=None, whole=False) -> list[dict]:
        return [x for x in runs if x["tool"] == tool and x["beam"] == beam and bool(x.get("whole_file")) == whole
                and (batch is None or x.get("batch") == batch)]

    table = []
    for batch in batches:
        for beam in (1, 5):
            row = {"batch": batch, "beam": beam}
            for tool in TOOLS:
                rows = pick(tool, beam, batch)
                if rows:
                    row[tool] = {"sent_per_s": median(rows, "sent_per_s"), "bleu": median(rows, "bleu")}
            if "OpenNMT-py" in row:
                for tool in OURS:
                    row[tool]["ratio"] = row[tool]["sent_per_s"] / row["OpenNMT-py"]["sent_per_s"]
            row["gflops"] = median(pick("seqkd fp32", beam, batch), "gflops")
            row["matmul_gflops"] = median(pick("seqkd fp32", beam, batch), "matmul_gflops")
            table.append(row)
    whole = {}
    for beam in (1, 5):
        onmt = [(median(pick("OpenNMT-py", beam, b), "e2e_sent_per_s"), b) for b in batches if pick("OpenNMT-py", beam, b)]
        best, best_batch = max(onmt) if onmt else (None, None)
        whole[beam] = {"OpenNMT-py": {"e2e_sent_per_s": best, "batch": best_batch}}
        for tool in OURS:
            fastest, batch = max((median(pick(tool, beam, b, whole=True), "e2e_sent_per_s"), b) for b in batches)
            rows = pick(tool, beam, batch, whole=True)
            whole[beam][tool] = {"e2e_sent_per_s": fastest, "batch": batch, "bleu": median(rows, "bleu"),
                                 "ratio": fastest / best if best else None}
    result = {"what": f"decoding the multi30k test set (1,000 sentences), 2x500 LSTM trained {args.steps} updates, "
                      "CPU", "search": SEARCH, "machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
              "table": table, "whole_file": whole, "runs": runs}
    io.write_json(args.out / "decode.json", result)
    lines = [f"# bench-decode ({result['date']})", "", result["what"] + f"; {result['machine']}; medians of "
             f"{args.rounds} rounds.", "",
             "| batch | search | OpenNMT-py sent/s (BLEU) | seqkd fp32 sent/s (BLEU) | ratio | seqkd int8 sent/s (BLEU) "
             "| ratio | int8 + shortlist sent/s (BLEU) | ratio | fp32 GFLOP/s | matmul GFLOP/s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]

    def cell(row, tool) -> str:
        x = row.get(tool)
        return f"{x['sent_per_s']:,.1f} ({x['bleu']:.2f})" if x else ""

    for r in table:
        lines.append(f"| {r['batch']} | {'greedy' if r['beam'] == 1 else 'beam 5'} | {cell(r, 'OpenNMT-py')} | "
                     f"{cell(r, 'seqkd fp32')} | {r['seqkd fp32'].get('ratio', float('nan')):.2f} | "
                     f"{cell(r, 'seqkd int8')} | {r['seqkd int8'].get('ratio', float('nan')):.2f} | "
                     f"{cell(r, 'seqkd int8 shortlist')} | {r['seqkd int8 shortlist'].get('ratio', float('nan')):.2f} | "
                     f"{r['gflops']:.0f} | "
                     f"{r['matmul_gflops']:.0f} |")
    lines += ["", "Whole file, as a command (process start and model load included):", "",
              "| search | OpenNMT-py best (batch) | seqkd fp32 best (batch, BLEU) | ratio | seqkd int8 best (batch, BLEU) "
              "| ratio | int8 + shortlist best (batch, BLEU) | ratio |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for beam, w in whole.items():
        o = w["OpenNMT-py"]
        cells = [f"{w[t]['e2e_sent_per_s']:,.1f} ({w[t]['batch']}, {w[t]['bleu']:.2f}) | "
                 f"{w[t]['ratio'] or float('nan'):.2f}"
                 for t in OURS]
        lines.append(f"| {'greedy' if beam == 1 else 'beam 5'} | {o['e2e_sent_per_s'] or float('nan'):,.1f} "
                     f"({o['batch']}) | {' | '.join(cells)} |")
    with io.atomic_open(args.out / "decode.md") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


main = entry("seqkd bench-decode", run)

if __name__ == "__main__":
    sys.exit(main())
