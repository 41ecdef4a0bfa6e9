"""seqkd train: train a teacher or a student (see seqkd.train). With a preset: --teacher, or --student NAME
[--size student|student-small] [--student_seed N]; torchrun --nproc_per_node N runs it data-parallel.
(Word-KD's teacher checkpoint is --kd_teacher.)"""
from __future__ import annotations

import sys

from pipeline import presets
from pipeline.common import entry, setup_logging, stage_config
from seqkd.config import TrainConfig
from seqkd.io import SeqkdError
from seqkd.train import train


def preset_layers(args) -> list:
    """The preset's layers for what the flags ask to train ([] without --preset)."""
    if not args.preset:
        return []
    preset = presets.load_preset(args.preset)
    run_dir = presets.run_dir(preset, args.run_dir)
    if args.student:
        return presets.student_layers(preset, run_dir, args.student, args.size or "student", args.student_seed)
    if args.teacher:
        return presets.teacher_layers(preset, run_dir)
    raise SeqkdError("with --preset, say what to train: --teacher or --student NAME")


def flags(parser) -> None:
    parser.add_argument("--teacher", action="store_true", help="with --preset: train the preset's teacher")
    parser.add_argument("--student", metavar="NAME", help="with --preset: train this student configuration")
    parser.add_argument("--size", default="student", help="with --student: student or student-small")
    parser.add_argument("--student_seed", type=int, metavar="N", help="with --student: which of the preset's "
                                                                      "students.seeds (default: the first)")


def run(argv: list[str]) -> int:
    cfg, _ = stage_config("seqkd train", __doc__, TrainConfig, argv, preset_layers, flags)
    setup_logging(cfg.out_dir)
    manifest = train(cfg)
    if manifest:
        best = manifest["best"]
        bleu = f"BLEU {best['valid_bleu']:.2f}, " if best["valid_bleu"] is not None else ""
        print(f"{cfg.out_dir}: {manifest['updates']} updates, best validation {bleu}ppl {best['valid_ppl']:.2f} "
              f"at update {best['step']}")
    return 0


main = entry("seqkd train", run)

if __name__ == "__main__":
    sys.exit(main())
