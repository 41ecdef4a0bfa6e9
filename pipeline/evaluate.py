"""seqkd evaluate: BLEU (greedy and beam), perplexity, p(t=y), parameters, checkpoint size and decoding speed of
one checkpoint on a split of a data stage (see seqkd.evaluate). Prints a summary and writes JSON with --out."""
from __future__ import annotations

import argparse
import json
import sys

from pipeline.common import main_guard, setup_logging
from seqkd import io
from seqkd.device import set_threads
from seqkd.evaluate import evaluate


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="seqkd evaluate", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data_dir", required=True, help="a finished data stage")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--alpha", type=float, default=0.0)
    p.add_argument("--min_len", type=int, default=1)
    p.add_argument("--batch_size", type=int, default=64)
    p.add_argument("--max_sentences", type=int, default=0, help="only the first N sentences (0 = all)")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = the cores this process may use)")
    p.add_argument("--out", help="write the full result (with hypotheses) as JSON here")
    args = p.parse_args(argv)
    setup_logging(quiet=True)
    set_threads(args.threads)
    r = evaluate(args.checkpoint, args.data_dir, split=args.split, beam=args.beam, batch_size=args.batch_size,
                 device=args.device, alpha=args.alpha, min_len=args.min_len, max_sentences=args.max_sentences)
    if args.out:
        io.write_json(args.out, r)
    brief = {k: v for k, v in r.items() if k not in ("greedy", "beam")}
    for name in ("greedy", "beam"):
        brief[name] = {k: v for k, v in r[name].items() if k != "hypotheses"}
    print(json.dumps(brief, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    return main_guard("seqkd evaluate", lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
