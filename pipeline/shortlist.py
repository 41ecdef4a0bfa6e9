"""seqkd shortlist --data_dir DIR --out FILE: a vocabulary shortlist for `seqkd translate --shortlist FILE`.

Built from a data stage's training pairs: the most frequent target pieces, and for every source piece the target
pieces that co-occur with it most strongly (Dice coefficient over sentence pairs; see seqkd.shortlist). Translating
with it, each batch scores only the shortlisted words of its sources: faster, and different from the full search
only where the full search would pick a word outside the shortlist (measure BLEU on the validation set)."""
from __future__ import annotations

import argparse
import sys
import time

from pipeline.common import entry
from seqkd import shortlist
from seqkd.data import load_split
from seqkd.io import SeqkdError
from seqkd.prepare import load_vocabs


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="seqkd shortlist", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="a finished data stage (make data)")
    p.add_argument("--out", required=True, help="where the shortlist goes (written atomically)")
    p.add_argument("--split", default="train", help="the split whose pairs are counted (default: train)")
    p.add_argument("--frequent", type=int, default=500, help="the most frequent target pieces, always in")
    p.add_argument("--per_source", type=int, default=10, help="target pieces per source piece")
    args = p.parse_args(argv)
    started = time.time()
    src_vocab, tgt_vocab = load_vocabs(args.data_dir)
    split = load_split(args.data_dir, args.split)
    built = shortlist.build(split.src, split.tgt, src_vocab, tgt_vocab, frequent=args.frequent,
                            per_source=args.per_source)
    try:
        shortlist.save(args.out, built, {"data_dir": args.data_dir, "split": args.split, "frequent": args.frequent,
                                         "per_source": args.per_source})
    except OSError as e:
        raise SeqkdError(f"--out {args.out}: cannot write there ({e.strerror})") from None
    print(f"{args.out}: {len(built.frequent)} frequent target pieces + {args.per_source} per source piece, from "
          f"{len(split)} {args.split} pairs of {args.data_dir} in {time.time() - started:.1f} s")
    return 0


main = entry("seqkd shortlist", run)

if __name__ == "__main__":
    sys.exit(main())
