"""make bench-train: seqkd's training target tokens/s against OpenNMT-py's, same data, same 2x500 model, same recipe,
alternating the two tools round by round (see pipeline.bench_common)."""
from __future__ import annotations

import statistics
import sys
import time

from pipeline.bench_common import (check_peers, machine, median, parser, peer_run, prepare_args, prepare_seqkd_data,
                                   seqkd_train)
from pipeline.common import entry
from seqkd import io


def bench_train(args) -> dict:
    check_peers(args)
    runs, seqkd_data = [], None
    for r in range(1, args.rounds + 1):
        rows = peer_run(args, args.out / f"onmt-train-{r}", steps=args.steps, train_repeats=1, decode_repeats=0,
                        batch=64)
        onmt = next(x for x in rows if x["task"] == "train")
        runs.append({"tool": "OpenNMT-py", "round": r, "steps": int(onmt["steps"]), "tok_per_s": float(onmt["tok_per_s"]),
                     "e2e_tok_per_s": float(onmt["e2e_tok_per_s"]), "wall_s": float(onmt["wall_s"]),
                     "params": int(onmt["params"])})
        seqkd_data = seqkd_data or prepare_seqkd_data(args)
        runs.append({"round": r, **seqkd_train(args, seqkd_data, args.out / f"seqkd-train-{r}", args.steps)})
        print(f"round {r}: OpenNMT-py {runs[-2]['tok_per_s']:.0f}, seqkd {runs[-1]['tok_per_s']:.0f} tok/s", flush=True)
    onmt_runs = [x for x in runs if x["tool"] == "OpenNMT-py"]
    ours = [x for x in runs if x["tool"] == "seqkd"]
    ratios = [b["tok_per_s"] / a["tok_per_s"] for a, b in zip(onmt_runs, ours)]
    from seqkd.checkpoint import read_checkpoint

    params = sum(v.numel() for v in read_checkpoint(args.out / "seqkd-train-1" / "last.pt")["model"].values())
    result = {"what": "training target tokens/s (EOS included) after the first 25-step window, 2x500 LSTM student, "
                      "multi30k En-De, 64 sentences per batch, SGD lr 1.0, CPU", "machine": machine(),
              "date": time.strftime("%Y-%m-%d %H:%M %Z"), "steps": args.steps, "runs": runs,
              "params": {"seqkd": params, "OpenNMT-py": onmt_runs[0]["params"]},
              "median_tok_per_s": {"OpenNMT-py": median(onmt_runs, "tok_per_s"), "seqkd": median(ours, "tok_per_s")},
              "ratio_per_round": ratios, "median_ratio": statistics.median(ratios)}
    io.write_json(args.out / "train.json", result)
    lines = [f"# bench-train ({result['date']})", "", result["what"] + f"; {args.steps} updates; {result['machine']}.",
             "", "| round | OpenNMT-py tok/s | seqkd tok/s | ratio |", "|---:|---:|---:|---:|"]
    lines += [f"| {a['round']} | {a['tok_per_s']:,.0f} | {b['tok_per_s']:,.0f} | {b['tok_per_s'] / a['tok_per_s']:.2f} |"
              for a, b in zip(onmt_runs, ours)]
    lines += ["", f"Medians: OpenNMT-py {result['median_tok_per_s']['OpenNMT-py']:,.0f}, seqkd "
                  f"{result['median_tok_per_s']['seqkd']:,.0f} target tokens/s; median ratio "
                  f"{result['median_ratio']:.2f}. Parameters: seqkd {params:,}, OpenNMT-py {onmt_runs[0]['params']:,}."]
    with io.atomic_open(args.out / "train.md") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return result


def run(argv: list[str]) -> int:
    args = prepare_args(parser("python -m pipeline.bench_train", __doc__, steps=300).parse_args(argv))
    bench_train(args)
    return 0


main = entry("seqkd bench-train", run)

if __name__ == "__main__":
    sys.exit(main())
