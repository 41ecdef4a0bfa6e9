"""seqkd train: train a teacher or a student (see seqkd.train). With a preset: --teacher, or --student NAME
[--size student|student-small]; torchrun --nproc_per_node N runs it data-parallel."""
from __future__ import annotations

import sys

from pipeline import presets
from pipeline.common import config_parser, main_guard, resolve, setup_logging
from seqkd.config import TrainConfig
from seqkd.train import train


def run(argv: list[str]) -> int:
    parser = config_parser("seqkd train", __doc__, TrainConfig)
    parser.add_argument("--teacher_run", action="store_true", help="with --preset: train the preset's teacher")
    parser.add_argument("--student", metavar="NAME", help="with --preset: train this student configuration")
    parser.add_argument("--size", default="student", help="with --student: student or student-small")
    parser.add_argument("--student_seed", type=int, help="with --student: which of the preset's students.seeds "
                                                          "(default: the first)")
    args = parser.parse_args(argv)
    layers = []
    if args.preset:
        preset = presets.load_preset(args.preset)
        run_dir = presets.run_dir(preset, args.run_dir)
        if args.student:
            layers = presets.student_layers(preset, run_dir, args.student, args.size, args.student_seed)
        elif args.teacher_run:
            layers = presets.teacher_layers(preset, run_dir)
        else:
            parser.error("with --preset, say what to train: --teacher_run or --student NAME")
    cfg = resolve(TrainConfig, args, layers)
    setup_logging(cfg.out_dir)
    manifest = train(cfg)
    if manifest:
        best = manifest["best"]
        bleu = f"BLEU {best['valid_bleu']:.2f}, " if best["valid_bleu"] is not None else ""
        print(f"{cfg.out_dir}: {manifest['updates']} updates, best validation {bleu}ppl {best['valid_ppl']:.2f} "
              f"at update {best['step']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return main_guard("seqkd train", lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
