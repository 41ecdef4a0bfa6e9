"""Where decoding time goes: sentences/s of greedy and beam-5 search over a split (seqkd.evaluate's timing), then a
torch.profiler table (self CPU time per op) of the first 5 batches.

    python -m pipeline.profile_decode --checkpoint runs/multi30k/teacher/best.pt --data_dir runs/multi30k/data
"""
from __future__ import annotations

import argparse
import sys

import torch

from pipeline.common import main_guard
from seqkd.checkpoint import load_model
from seqkd.data import load_split
from seqkd.speed import time_decode
from seqkd.search import translate_ids


def profile(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    device = torch.device("cpu")
    model = load_model(args.checkpoint)[0]
    split = load_split(args.data_dir, args.split)
    sources = [split.src[i] for i in range(len(split))]
    for beam in (1, 5):
        speed, _ = time_decode(model, sources, beam=beam, batch_size=args.batch_size, device=device, passes=1)
        seconds = speed.seconds
        print(f"beam {beam}: {len(sources) / seconds:.1f} sentences/s at batch {args.batch_size}, "
              f"{args.threads} threads")
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            translate_ids(model, sources[:5 * args.batch_size], beam=beam, batch_size=args.batch_size)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.profile_decode", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--data_dir", required=True, help="a data stage's folder")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return main_guard("profile_decode", lambda: profile(args))


if __name__ == "__main__":
    sys.exit(main())
