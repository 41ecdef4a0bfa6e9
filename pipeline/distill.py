"""seqkd distill: the teacher's beam search over the training source -> Seq-KD and Seq-Inter targets
(see seqkd.distill). `--shard i/n` runs one of n independent processes; torchrun --nproc_per_node N uses N GPUs."""
from __future__ import annotations

import sys

from pipeline import presets
from pipeline.common import config_parser, main_guard, resolve, setup_logging
from seqkd.config import DistillConfig
from seqkd.distill import distill


def run(argv: list[str]) -> int:
    args = config_parser("seqkd distill", __doc__, DistillConfig).parse_args(argv)
    layers = []
    if args.preset:
        preset = presets.load_preset(args.preset)
        layers = presets.distill_layers(preset, presets.run_dir(preset, args.run_dir))
    cfg = resolve(DistillConfig, args, layers)
    setup_logging(cfg.out_dir)
    manifest = distill(cfg)
    if manifest:
        kd = manifest["seqkd"]
        print(f"{cfg.out_dir}: {manifest['sentences']} Seq-KD targets (BLEU {kd['bleu']:.2f} against the references, "
              f"{manifest['sentences_per_s']:.1f} sentences/s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return main_guard("seqkd distill", lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
