"""seqkd quantize CHECKPOINT OUT: an int8 copy of a trained model, for translating on a CPU.

The matrices are stored as int8 with one scale per row, the embeddings too; the file also holds the
vocabularies, so `seqkd translate --checkpoint OUT` and `seqkd evaluate --checkpoint OUT` take it as they take the
checkpoint (see seqkd.inference)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.common import entry
from seqkd.checkpoint import is_int8, load_model
from seqkd.inference import save_int8
from seqkd.io import SeqkdError


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="seqkd quantize", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a .pt file written by seqkd train")
    p.add_argument("out", help="where the int8 model goes (written atomically)")
    args = p.parse_args(argv)
    if Path(args.out).resolve() == Path(args.checkpoint).resolve():
        raise SeqkdError(f"{args.out}: the int8 model must not replace the checkpoint it is made from")
    model, _, _, state = load_model(args.checkpoint, "cpu", int8=True)
    if is_int8(state):
        raise SeqkdError(f"{args.checkpoint}: already an int8 model")
    try:
        save_int8(args.out, model, state["vocab"], {"quantized_from": str(args.checkpoint),
                                                    "lineage": state.get("lineage")})
    except OSError as e:
        raise SeqkdError(f"{args.out}: cannot write there ({e.strerror})") from None
    before, after = Path(args.checkpoint).stat().st_size, Path(args.out).stat().st_size
    print(f"{args.out}: int8, {after / 2**20:.1f} MB ({args.checkpoint}: {before / 2**20:.1f} MB)")
    return 0


main = entry("seqkd quantize", run)

if __name__ == "__main__":
    sys.exit(main())
