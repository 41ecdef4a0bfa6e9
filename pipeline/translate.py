"""seqkd translate: text in (stdin or --input), translations out (stdout or --output), one line per line.
The checkpoint alone holds the model and both vocabularies. --nbest K writes `id ||| hypothesis ||| score` lines."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pipeline.common import main_guard, setup_logging
from seqkd import io
from seqkd.checkpoint import check_vocab, load_model
from seqkd.device import resolve_device, set_threads
from seqkd.translate import translate_lines


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="seqkd translate", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, help="a .pt file written by seqkd train")
    p.add_argument("--input", default="-", help="text file to translate, - for stdin")
    p.add_argument("--output", default="-", help="file for the translations, - for stdout (written atomically)")
    p.add_argument("--beam", type=int, default=5, help="beam size (1 = greedy)")
    p.add_argument("--nbest", type=int, default=1, help="hypotheses per sentence (n-best format when > 1)")
    p.add_argument("--alpha", type=float, default=0.0, help="length normalization score / length**alpha")
    p.add_argument("--max_len_a", type=float, default=1.5, help="output length limit a * source length + b")
    p.add_argument("--max_len_b", type=int, default=10, help="output length limit a * source length + b")
    p.add_argument("--min_len", type=int, default=1, help="no end-of-sentence before this many tokens")
    p.add_argument("--batch_size", type=int, default=64, help="sentences per batch")
    p.add_argument("--batch_tokens", type=int, default=0, help="source tokens per batch (0 = sentences only)")
    p.add_argument("--max_input_tokens", type=int, default=250, help="longer inputs are truncated (or rejected)")
    p.add_argument("--on_long", choices=("truncate", "error"), default="truncate", help="what to do with them")
    p.add_argument("--data_dir", help="check that the checkpoint's vocabularies are this data stage's")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = the cores this process may use)")
    return p


def run(argv: list[str]) -> int:
    args = parser().parse_args(argv)
    setup_logging(quiet=True)
    set_threads(args.threads)
    device = resolve_device(args.device)
    model, src_vocab, tgt_vocab, _ = load_model(args.checkpoint, device)
    if args.data_dir:
        from seqkd.prepare import load_vocabs

        data_src, data_tgt = load_vocabs(args.data_dir)
        check_vocab(args.checkpoint, src_vocab, data_src, "source")
        check_vocab(args.checkpoint, tgt_vocab, data_tgt, "target")
    source = sys.stdin if args.input == "-" else open(args.input, encoding="utf-8", newline="\n")
    results = translate_lines(model, src_vocab, tgt_vocab, source, beam=args.beam, nbest=args.nbest,
                              max_input_tokens=args.max_input_tokens, on_long=args.on_long, alpha=args.alpha,
                              max_len_a=args.max_len_a, max_len_b=args.max_len_b, min_len=args.min_len,
                              batch_size=args.batch_size, batch_tokens=args.batch_tokens, device=device)

    def write(out) -> int:
        n = 0
        for i, hyps in enumerate(results):
            if args.nbest > 1:
                out.writelines(f"{i} ||| {text} ||| {score:.4f}\n" for text, score in hyps)
            else:
                out.write(hyps[0][0] + "\n")
            n += 1
        return n

    started = time.time()
    if args.output == "-":
        n = write(sys.stdout)
        sys.stdout.flush()
    else:
        with io.atomic_open(Path(args.output)) as out:
            n = write(out)
    print(f"seqkd translate: {n} lines in {time.time() - started:.1f} s", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    return main_guard("seqkd translate", lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
