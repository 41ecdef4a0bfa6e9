"""seqkd data: a corpus -> SentencePiece -> memory-mapped arrays (see seqkd.prepare)."""
from __future__ import annotations

import sys

from pipeline import presets
from pipeline.common import entry, preset_layers, setup_logging, stage_config
from seqkd.config import DataConfig
from seqkd.prepare import prepare_data


def config(argv: list[str]) -> DataConfig:
    """The data stage's configuration from its command line (also how the make plan sees it)."""
    return stage_config("seqkd data", __doc__, DataConfig, argv, preset_layers(presets.data_layers))[0]


def run(argv: list[str]) -> int:
    cfg = config(argv)
    setup_logging(cfg.out_dir)
    manifest = prepare_data(cfg)
    for split, s in manifest["splits"].items():
        print(f"{split}: {s['pairs_kept']} pairs ({s['src_tokens']} / {s['tgt_tokens']} pieces)")
    print(f"vocabulary: {manifest['vocab']['src']} source, {manifest['vocab']['tgt']} target pieces -> {cfg.out_dir}")
    return 0


main = entry("seqkd data", run)

if __name__ == "__main__":
    sys.exit(main())
