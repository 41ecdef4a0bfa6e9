"""seqkd data: a corpus -> SentencePiece -> memory-mapped arrays (see seqkd.prepare)."""
from __future__ import annotations

import sys

from pipeline import presets
from pipeline.common import config_parser, main_guard, resolve, setup_logging
from seqkd.config import DataConfig
from seqkd.prepare import prepare_data


def config(argv: list[str]) -> DataConfig:
    """The data stage's configuration from its command line (also how the make plan sees it)."""
    args = config_parser("seqkd data", __doc__, DataConfig).parse_args(argv)
    layers = []
    if args.preset:
        preset = presets.load_preset(args.preset)
        layers = presets.data_layers(preset, presets.run_dir(preset, args.run_dir))
    return resolve(DataConfig, args, layers)


def run(argv: list[str]) -> int:
    cfg = config(argv)
    setup_logging(cfg.out_dir)
    manifest = prepare_data(cfg)
    for split, s in manifest["splits"].items():
        print(f"{split}: {s['pairs_kept']} pairs ({s['src_tokens']} / {s['tgt_tokens']} pieces)")
    print(f"vocabulary: {manifest['vocab']['src']} source, {manifest['vocab']['tgt']} target pieces -> {cfg.out_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return main_guard("seqkd data", lambda: run(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    sys.exit(main())
