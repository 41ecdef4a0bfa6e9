"""seqkd translate: text in (stdin or --input), translations out (stdout or --output), one line per line.
The checkpoint alone holds the model and both vocabularies. --nbest K writes `id ||| hypothesis ||| score` lines."""
from __future__ import annotations

import contextlib
import sys
import time
from pathlib import Path
from typing import Iterator

from pipeline.common import config_parser, entry, resolve, setup_logging
from seqkd import io
from seqkd.io import SeqkdError
from seqkd.checkpoint import check_vocab, load_model
from seqkd.device import resolve_device, set_threads
from seqkd.config import TranslateConfig
from seqkd.translate_text import check_search, translate_lines


def input_lines(stream, name: str) -> Iterator[str]:
    """Lines of a binary stream as text; a line that is not UTF-8 is an error naming it."""
    for number, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise SeqkdError(f"{name}:{number}: invalid UTF-8 ({e.reason} at byte {e.start} of the line)") from None


def run(argv: list[str]) -> int:
    args = resolve(TranslateConfig, config_parser("seqkd translate", __doc__, TranslateConfig, preset=False)
                   .parse_args(argv), [])
    if not args.checkpoint:
        raise SeqkdError("--checkpoint is required")
    check_search(args.beam, args.nbest, None)
    setup_logging(quiet=True)
    set_threads(args.threads)
    if args.input != "-" and not Path(args.input).is_file():
        raise SeqkdError(f"--input {args.input}: file not found")
    device = resolve_device(args.device)
    model, src_vocab, tgt_vocab, _ = load_model(args.checkpoint, device, int8=args.int8)
    if args.data_dir:
        from seqkd.prepare import load_vocabs

        data_src, data_tgt = load_vocabs(args.data_dir)
        check_vocab(args.checkpoint, src_vocab, data_src, "source")
        check_vocab(args.checkpoint, tgt_vocab, data_tgt, "target")
    shortlist = None
    if args.shortlist:
        from seqkd import shortlist as shortlists

        shortlist = shortlists.load(args.shortlist)
        shortlist.check(f"--shortlist {args.shortlist}", src_vocab, tgt_vocab)
    name = "stdin" if args.input == "-" else args.input
    started = time.time()
    try:
        n = translate_to(args, model, src_vocab, tgt_vocab, name, device, shortlist)
    except OSError as e:  # what the disk says when the translations are flushed and renamed into place
        if args.output == "-":
            raise
        raise SeqkdError(f"--output {args.output}: writing failed ({e.strerror}); nothing was written") from None
    print(f"seqkd translate: {n} lines in {time.time() - started:.1f} s", file=sys.stderr)
    return 0


def translate_to(args, model, src_vocab, tgt_vocab, name: str, device, shortlist=None) -> int:
    """Translate args.input to args.output (a file is written atomically); the number of lines."""
    with contextlib.ExitStack() as stack:
        source = sys.stdin.buffer if args.input == "-" else stack.enter_context(open(args.input, "rb"))
        results = translate_lines(model, src_vocab, tgt_vocab, input_lines(source, name), nbest=args.nbest,
                                  max_input_tokens=args.max_input_tokens, on_long=args.on_long, device=device,
                                  shortlist=shortlist, **args.search())
        if args.output == "-":
            n = write(sys.stdout, results, args.nbest)
            sys.stdout.flush()
        elif Path(args.output).exists() and not Path(args.output).is_file():  # /dev/stdout, a pipe: write to it
            out = stack.enter_context(open(args.output, "w", encoding="utf-8"))
            n = write(out, results, args.nbest)
        else:
            try:  # the temporary file is made before translating: a folder we cannot write fails at once
                out = stack.enter_context(io.atomic_open(Path(args.output)))
            except OSError as e:
                raise SeqkdError(f"--output {args.output}: cannot write there ({e.strerror})") from None
            n = write(out, results, args.nbest)
    return n


def write(out, results, nbest: int) -> int:
    n = 0
    for i, hyps in enumerate(results):
        if nbest > 1:
            out.writelines(f"{i} ||| {text} ||| {score:.4f}\n" for text, score in hyps)
        else:
            out.write(hyps[0][0] + "\n")
        n += 1
    return n


main = entry("seqkd translate", run)


if __name__ == "__main__":
    sys.exit(main())
