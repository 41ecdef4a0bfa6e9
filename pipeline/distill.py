"""seqkd distill: the teacher's beam search over the training source -> Seq-KD and Seq-Inter targets
(see seqkd.distill). `--shard i/n` runs one of n independent processes; torchrun --nproc_per_node N uses N GPUs."""
from __future__ import annotations

import sys

from pipeline import presets
from pipeline.common import entry, preset_layers, setup_logging, stage_config
from seqkd.config import DistillConfig
from seqkd.distill import distill


def run(argv: list[str]) -> int:
    cfg, _ = stage_config("seqkd distill", __doc__, DistillConfig, argv, preset_layers(presets.distill_layers))
    setup_logging(cfg.out_dir)
    manifest = distill(cfg)
    if manifest:
        kd = manifest["seqkd"]
        print(f"{cfg.out_dir}: {manifest['sentences']} Seq-KD targets (BLEU {kd['bleu']:.2f} against the references, "
              f"{manifest['sentences_per_s']:.1f} sentences/s, {kd['empty']} empty, {kd['at_length_limit']} at the "
              "length limit)")
    return 0


main = entry("seqkd distill", run)

if __name__ == "__main__":
    sys.exit(main())
