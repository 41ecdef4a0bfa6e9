"""Configuration layering: flags, YAML and their types."""
import argparse

import pytest

from seqkd.config import TrainConfig, add_arguments, build, flags_to_dict
from seqkd.io import SeqkdError


def parse(*flags: str) -> TrainConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser, TrainConfig)
    return build(TrainConfig, [(flags_to_dict(parser.parse_args(flags), TrainConfig), "command line")])


def test_text_flags_keep_words_that_yaml_would_read_as_booleans_or_numbers():
    cfg = parse("--bf16", "off", "--lr", "0.5", "--model.hidden", "64", "--valid_bleu", "false")
    assert (cfg.bf16, cfg.lr, cfg.model.hidden, cfg.valid_bleu) == ("off", 0.5, 64, False)


def test_an_unquoted_off_in_yaml_is_an_error_that_says_to_quote_it():
    with pytest.raises(SeqkdError, match=r"teacher.bf16: expected str, got False \(YAML reads off"):
        build(TrainConfig, [({"bf16": False}, "preset.yaml: teacher")])
