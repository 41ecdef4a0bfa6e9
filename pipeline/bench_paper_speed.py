"""The paper's speed comparison on this machine: a teacher's beam search against a student's greedy search, in
words/s (the paper: a 4 x 1000 teacher's beam 5 at 102 words/s against a 2 x 500 student's greedy search at 1,051
on a GPU, 10x), fp32 and int8, with each output's length against the references and its BLEU.

    python -m pipeline.bench_paper_speed --teacher runs/bench/teacher-4x1000b/last.pt \\
        --student runs/bench/seqkd-1200/last.pt --data_dir runs/bench/data

The search settings are the bench's (`make bench-decode`): length normalization 1, output length <= 1.25 x source +
5. Speeds: the split after a warm-up batch, the median of `--passes` passes (seqkd.speed.time_decode).
"""
from __future__ import annotations

import argparse
import sys

import sacrebleu
import torch

from pipeline.common import main_guard
from seqkd import io
from seqkd.checkpoint import load_model
from seqkd.data import load_split
from seqkd.inference import quantize
from seqkd.model import count_parameters
from seqkd.prepare import read_lines
from seqkd.speed import time_decode


def bench(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    split = load_split(args.data_dir, args.split, with_tgt=False)
    sources = [split.src[i] for i in range(len(split))]
    refs = read_lines(f"{args.data_dir}/{args.split}.{io.read_manifest(args.data_dir)['tgt_lang']}")
    ref_words = sum(len(r.split()) for r in refs)
    words_per_s = {}
    for role, checkpoint, beam in (("teacher", args.teacher, 5), ("student", args.student, 1)):
        model, _, tgt_vocab, _ = load_model(checkpoint)
        cfg = model.cfg
        shape = f"{cfg.layers} x {cfg.hidden}{' bidirectional' if cfg.bidirectional else ''}"
        params = count_parameters(model)
        for precision, m in (("fp32", model), ("int8", quantize(model))):
            speed, hyps = time_decode(m, sources, beam=beam, batch_size=args.batch_size, passes=args.passes,
                                      alpha=1.0, max_len_a=1.25, max_len_b=5)
            text = [tgt_vocab.decode(h[0].tokens) for h in hyps]
            words = sum(len(t.split()) for t in text)
            words_per_s[role, precision] = words / speed.seconds
            print(f"{role} {shape} ({params / 1e6:.1f}M parameters) {precision} "
                  f"{'beam 5' if beam > 1 else 'greedy'}: {speed.sent_per_s:.1f} sentences/s, "
                  f"{words_per_s[role, precision]:.0f} words/s, output {words / ref_words:.3f} of the references' "
                  f"words, BLEU {sacrebleu.corpus_bleu(text, [refs]).score:.2f}", flush=True)
    for precision in ("fp32", "int8"):
        print(f"{precision}: student greedy / teacher beam 5 = "
              f"{words_per_s['student', precision] / words_per_s['teacher', precision]:.1f}x words/s")
    print(f"int8 student greedy / fp32 teacher beam 5 = "
          f"{words_per_s['student', 'int8'] / words_per_s['teacher', 'fp32']:.1f}x words/s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.bench_paper_speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", required=True, help="checkpoint searched with beam 5")
    parser.add_argument("--student", required=True, help="checkpoint searched greedily")
    parser.add_argument("--data_dir", required=True, help="a data stage's folder")
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    return main_guard("bench_paper_speed", lambda: bench(args))


if __name__ == "__main__":
    sys.exit(main())
