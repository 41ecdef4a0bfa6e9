"""make bench-decode: seqkd's greedy and beam-5 decoding against OpenNMT-py's translate (see pipeline.bench).

Both tools decode the multi30k test set with a 2x500 model trained for the same number of updates on the same
pieces (1,200 by default, enough for full-length output), at each batch size, alternating the tools. Both use
the length limit 1.25 x source length + 5 and length normalization score / length (OpenNMT-py's defaults, as the
peer harness runs it). seqkd also reports its decoder's achieved GFLOP/s next to a plain matrix product's, and the
same figures for the 4x1000 teacher shape when a trained one is given (--teacher).
"""
from __future__ import annotations

import time
from pathlib import Path

from pipeline.bench import machine, median, peer_run, prepare_seqkd_data, seqkd_train
from seqkd import io
from seqkd.checkpoint import load_model
from seqkd.data import load_split
from seqkd.speed import matmul_gflops, time_decode

SEARCH = dict(alpha=1.0, max_len_a=1.25, max_len_b=5)


def seqkd_decode(model, sources, beam: int, batch: int) -> dict:
    speed, hyps = time_decode(model, sources, beam=beam, batch_size=batch, **SEARCH)
    peak = matmul_gflops(0.5)
    return {"tool": "seqkd", "beam": beam, "batch": batch, "sent_per_s": speed.sent_per_s,
            "tok_per_s": speed.tok_per_s, "seconds": speed.seconds, "gflops": speed.gflops, "matmul_gflops": peak,
            "mean_len": speed.tokens / speed.sentences}


def run(args) -> int:
    from pipeline.bench import check_peers

    check_peers(args)
    batches = [int(b) for b in args.batches.split(",")]
    # 1. train both models once (OpenNMT-py through the harness, which also prepares the shared pieces)
    onmt_ckpt = args.work / "onmt" / f"model_step_{args.steps}.pt"
    if not onmt_ckpt.exists():
        peer_run(args, args.out / "onmt-decode-train", steps=args.steps, train_repeats=1, decode_repeats=0, batch=64)
    data_dir = prepare_seqkd_data(args)
    ours = args.out / f"seqkd-{args.steps}"
    if not (ours / "last.pt").exists():
        seqkd_train(args, data_dir, ours, args.steps)
    model, _, tgt_vocab, _ = load_model(ours / "last.pt")
    test = load_split(data_dir, "test")
    sources = [test.src[i] for i in range(len(test))]

    # 2. decode, alternating the tools round by round
    runs = []
    for r in range(1, args.rounds + 1):
        for batch in batches:
            for beam in (1, 5):
                row = seqkd_decode(model, sources, beam, batch)
                runs.append({"round": r, **row})
                print(f"round {r} batch {batch} beam {beam}: seqkd {row['sent_per_s']:.1f} sent/s "
                      f"({row['gflops']:.0f} GFLOP/s, matmul {row['matmul_gflops']:.0f})", flush=True)
            rows = peer_run(args, args.out / f"onmt-decode-b{batch}-r{r}", steps=args.steps, train_repeats=0,
                            decode_repeats=1, batch=batch)
            for x in rows:
                if x["task"] in ("greedy", "beam5") and x.get("sent_per_s"):
                    runs.append({"round": r, "tool": "OpenNMT-py", "beam": 1 if x["task"] == "greedy" else 5,
                                 "batch": batch, "sent_per_s": float(x["sent_per_s"]), "tok_per_s": float(x["tok_per_s"]),
                                 "seconds": float(x["internal_s"]), "bleu": float(x["bleu"])})
                    print(f"round {r} batch {batch} {x['task']}: OpenNMT-py {float(x['sent_per_s']):.1f} sent/s",
                          flush=True)
    teacher = teacher_figures(args, data_dir) if getattr(args, "teacher", None) else None
    return write(args, runs, batches, teacher)


def teacher_figures(args, data_dir: Path) -> dict:
    model, *_ = load_model(args.teacher)
    test = load_split(data_dir, "test")
    sources = [test.src[i] for i in range(len(test))]
    return {f"beam{k}": seqkd_decode(model, sources, k, 64) for k in (1, 5)}


def write(args, runs: list[dict], batches: list[int], teacher) -> int:
    table = []
    for batch in batches:
        for beam in (1, 5):
            a = [x for x in runs if x["tool"] == "seqkd" and x["batch"] == batch and x["beam"] == beam]
            b = [x for x in runs if x["tool"] == "OpenNMT-py" and x["batch"] == batch and x["beam"] == beam]
            row = {"batch": batch, "beam": beam, "seqkd_sent_per_s": median(a, "sent_per_s"),
                   "seqkd_tok_per_s": median(a, "tok_per_s"), "seqkd_gflops": median(a, "gflops"),
                   "matmul_gflops": median(a, "matmul_gflops")}
            if b:
                row.update(onmt_sent_per_s=median(b, "sent_per_s"), onmt_tok_per_s=median(b, "tok_per_s"),
                           ratio=row["seqkd_sent_per_s"] / median(b, "sent_per_s"))
            table.append(row)
    result = {"what": "decoding the multi30k test set (1,000 sentences), 2x500 LSTM trained "
                      f"{args.steps} updates, CPU, fp32", "search": SEARCH, "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M %Z"), "table": table, "runs": runs, "teacher": teacher}
    io.write_json(args.out / "decode.json", result)
    lines = [f"# bench-decode ({result['date']})", "", result["what"] + f"; {result['machine']}; medians of "
             f"{args.rounds} rounds.", "",
             "| batch | search | seqkd sent/s | seqkd tok/s | OpenNMT-py sent/s | ratio | seqkd GFLOP/s | matmul GFLOP/s |",
             "|---:|---|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        lines.append(f"| {r['batch']} | {'greedy' if r['beam'] == 1 else 'beam 5'} | {r['seqkd_sent_per_s']:,.1f} | "
                     f"{r['seqkd_tok_per_s']:,.0f} | {r.get('onmt_sent_per_s', float('nan')):,.1f} | "
                     f"{r.get('ratio', float('nan')):.2f} | {r['seqkd_gflops']:.0f} | {r['matmul_gflops']:.0f} |")
    with io.atomic_open(args.out / "decode.md") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0

