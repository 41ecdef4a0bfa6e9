"""Translating text: lines in, detokenized lines (or n-best lists) out, in input order, empty lines kept."""
from __future__ import annotations

import logging
from typing import Iterable, Iterator

from seqkd.io import SeqkdError
from seqkd.search import translate_ids
from seqkd.vocab import Vocab

log = logging.getLogger(__name__)


def check_search(beam: int, nbest: int, tgt_vocab: Vocab | None) -> None:
    """Beam and n-best sizes that make sense for this vocabulary (the symbols a search can emit: all but
    <pad> and <s>); without a vocabulary, only what needs none."""
    if beam < 1 or nbest < 1:
        raise SeqkdError(f"--beam and --nbest must be at least 1, got beam {beam}, nbest {nbest}")
    emittable = len(tgt_vocab) - 2 if tgt_vocab is not None else beam
    if beam > emittable:
        raise SeqkdError(f"--beam {beam} is larger than the target vocabulary ({emittable} symbols)")
    if nbest > beam:
        raise SeqkdError(f"--nbest {nbest} is larger than --beam {beam}: a beam of {beam} keeps {beam} hypotheses")


def translate_lines(model, src_vocab: Vocab, tgt_vocab: Vocab, lines: Iterable[str], *, beam: int = 5,
                    nbest: int = 1, max_input_tokens: int = 250, on_long: str = "truncate", chunk: int = 10000,
                    **search) -> Iterator[list[tuple[str, float]]]:
    """Yield, per input line, its n-best list of (detokenized text, normalized score), best first.

    Lines are translated `chunk` at a time, so output streams; a line longer than `max_input_tokens` pieces is
    truncated with a warning, or is an error when on_long == "error"."""
    check_search(beam, nbest, tgt_vocab)
    buffer: list[str] = []
    first = 1
    for line in lines:
        buffer.append(line.rstrip("\n"))
        if len(buffer) == chunk:
            yield from _translate_chunk(model, src_vocab, tgt_vocab, buffer, first, beam, nbest, max_input_tokens,
                                        on_long, search)
            first += len(buffer)
            buffer = []
    if buffer:
        yield from _translate_chunk(model, src_vocab, tgt_vocab, buffer, first, beam, nbest, max_input_tokens,
                                    on_long, search)


def _translate_chunk(model, src_vocab, tgt_vocab, lines, first, beam, nbest, max_tokens, on_long, search):
    ids = src_vocab.encode([line.strip() for line in lines])
    for i, seq in enumerate(ids):
        if len(seq) > max_tokens:
            where = f"input line {first + i}: {len(seq)} pieces, more than --max_input_tokens {max_tokens}"
            if on_long == "error":
                raise SeqkdError(where)
            log.warning("%s: translating the first %d", where, max_tokens)
            ids[i] = seq[:max_tokens]
    for hyps in translate_ids(model, ids, beam=beam, nbest=nbest, **search):
        yield [(tgt_vocab.decode(h.tokens), h.score) for h in hyps]
