"""python -m pipeline.synth_oracle --data_dir RUN/data [--split valid] [FILE ...]: how far translations are from the
default corpus's most likely translations.

The default corpus draws every free choice of a translation anew (data/README.md), so no system can match its
references; the best a deterministic system can do is roughly the most likely translation of each sentence, every
choice at its likelier alternative (`synth.render_most_likely`). This prints that oracle's BLEU against the
references, then, for each FILE (one translation per line of the split), its BLEU against the references and against
the most likely translations, and the share of its lines equal to them. A model far below the oracle against the
references and far from it as well is limited by what it has not learned (words, agreement), not by the choices.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import sacrebleu

from pipeline.common import entry
from seqkd import synth
from seqkd.io import SeqkdError, atomic_open, read_manifest
from seqkd.prepare import read_lines


def bleu(hyps: list[str], refs: list[str]) -> float:
    return sacrebleu.metrics.BLEU(force=True).corpus_score(hyps, [refs]).score  # as seqkd evaluate scores


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.synth_oracle", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data_dir", required=True, help="a run's data folder (made from corpus: default)")
    p.add_argument("--split", default="valid", choices=("train", "valid", "test"))
    p.add_argument("--output", help="also write the split's most likely translations here")
    p.add_argument("files", nargs="*", help="translations of the split, one per line")
    args = p.parse_args(argv)
    manifest = read_manifest(args.data_dir)
    if manifest is None:
        raise SeqkdError(f"--data_dir {args.data_dir}: no finished data stage there (no manifest.json)")
    cfg = manifest["config"]
    if cfg["corpus"] != "default":
        raise SeqkdError(f"--data_dir {args.data_dir}: corpus '{cfg['corpus']}'; the oracle exists only for the "
                         f"synthetic default corpus")
    sizes = (cfg["seed"], cfg["n_train"], cfg["n_valid"], cfg["n_test"])
    refs = read_lines(Path(args.data_dir) / f"{args.split}.{synth.TGT_LANG}")
    # Two passes (about 5 s each): only equal references show that the data came from this very generator.
    if refs != synth.generate(*sizes)[args.split][1]:
        raise SeqkdError(f"{Path(args.data_dir) / f'{args.split}.{synth.TGT_LANG}'}: not the references this "
                         f"generator makes for seed {cfg['seed']} (a different version of seqkd/synth.py, or filtered)")
    oracle = synth.generate(*sizes, most_likely=True)[args.split][1]
    if args.output:
        with atomic_open(args.output) as f:
            f.write("".join(line + "\n" for line in oracle))
    print(f"{args.split}, {len(refs)} sentences: most likely translations against the references: BLEU "
          f"{bleu(oracle, refs):.2f}, {sum(o == r for o, r in zip(oracle, refs)) / len(refs):.1%} identical")
    for path in args.files:
        hyps = read_lines(Path(path))
        if len(hyps) != len(refs):
            raise SeqkdError(f"{path}: {len(hyps)} lines, the {args.split} split has {len(refs)}")
        print(f"{path}: BLEU {bleu(hyps, refs):.2f} against the references, {bleu(hyps, oracle):.2f} against the "
              f"most likely translations ({sum(h == o for h, o in zip(hyps, oracle)) / len(refs):.1%} identical)")
    return 0


main = entry("python -m pipeline.synth_oracle", run)

if __name__ == "__main__":
    raise SystemExit(main())
