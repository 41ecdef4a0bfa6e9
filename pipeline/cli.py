"""The `seqkd` command: one sub-command per stage."""
from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "data": ("pipeline.data", "prepare a corpus: SentencePiece and integer arrays"),
    "train": ("pipeline.train", "train a teacher or a student"),
    "distill": ("pipeline.distill", "Seq-KD and Seq-Inter targets from the teacher's beam search"),
    "translate": ("pipeline.translate", "translate text with a checkpoint"),
    "evaluate": ("pipeline.evaluate", "BLEU, perplexity, p(t=y), size and speed of a checkpoint"),
    "quantize": ("pipeline.quantize", "an int8 copy of a trained model, for translating on a CPU"),
    "shortlist": ("pipeline.shortlist", "a vocabulary shortlist for translate --shortlist, from a data stage"),
    "report": ("pipeline.report", "the Table-1 report of a preset's run"),
}


def usage() -> str:
    lines = ["usage: seqkd COMMAND [options]   (seqkd COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<10} {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"seqkd: unknown command '{argv[0]}'\n\n{usage()}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
