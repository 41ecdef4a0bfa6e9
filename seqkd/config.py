"""Configuration: one frozen dataclass per stage, merged from defaults < YAML files < command-line flags.

A field's name is its YAML key and its flag (`lr: 0.5` <-> `--lr 0.5`; nested: `model: {hidden: 500}` <->
`--model.hidden 500`). Unknown keys and wrong types are errors that name the file and list the known keys.
"""
from __future__ import annotations

import argparse
import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Optional

import yaml

from seqkd.io import SeqkdError


def opt(default: Any, help: str, choices: tuple | None = None):
    """A config field with its help text (and allowed values)."""
    meta = {"help": help}
    if choices:
        meta["choices"] = choices
    if isinstance(default, (dict, list)) or dataclasses.is_dataclass(default):
        return field(default_factory=lambda: default, metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class ModelConfig:
    layers: int = opt(2, "LSTM layers in the encoder and in the decoder")
    hidden: int = opt(500, "LSTM hidden size (encoder and decoder)")
    emb: int = opt(500, "word embedding size")
    dropout: float = opt(0.3, "dropout between LSTM layers and on the attentional state")
    bidirectional: bool = opt(False, "bidirectional encoder (the paper's is unidirectional)")
    tie_embeddings: bool = opt(False, "share the decoder's input embedding with the output layer")
    init_range: float = opt(0.1, "parameters start uniform in [-init_range, init_range]")


@dataclass(frozen=True)
class DataConfig:
    # fields that do not change the stage's result, left out of its key (see key_settings)
    NOT_IN_KEY: ClassVar[tuple] = ("out_dir", "workers", "raw_dir", "mirror")
    corpus: str = opt("default", "corpus recipe", ("default", "multi30k", "iwslt14", "wmt14", "text"))
    out_dir: str = opt("runs/default/data", "where the prepared data goes")
    raw_dir: str = opt("data/corpora", "where downloaded and generated raw corpora go (one folder per corpus)")
    mirror: Optional[str] = opt(None, "read the corpus files from this directory or URL instead of their origin")
    src: Optional[str] = opt(None, "source language code (text corpus; named corpora set their own)")
    tgt: Optional[str] = opt(None, "target language code (text corpus)")
    train: Optional[str] = opt(None, "text corpus: training files prefix (PREFIX.SRC, PREFIX.TGT)")
    valid: Optional[str] = opt(None, "text corpus: validation files prefix")
    test: Optional[str] = opt(None, "text corpus: test files prefix")
    seed: int = opt(1, "default corpus: generator seed")
    n_train: int = opt(30000, "default corpus: training pairs")
    n_valid: int = opt(1000, "default corpus: validation pairs")
    n_test: int = opt(1000, "default corpus: test pairs")
    spm_type: str = opt("unigram", "SentencePiece model type", ("unigram", "bpe"))
    joint_vocab: bool = opt(True, "one SentencePiece model for both sides (else one per side)")
    vocab_size: int = opt(8000, "SentencePiece vocabulary size (per model)")
    spm_model: Optional[str] = opt(None, "use this existing SentencePiece model instead of training one")
    spm_sentences: int = opt(2000000, "at most this many sentences (per side) train SentencePiece")
    character_coverage: float = opt(1.0, "SentencePiece character coverage")
    max_tokens: int = opt(100, "drop training pairs with more pieces than this on either side")
    max_ratio: float = opt(3.0, "drop training pairs whose piece-length ratio exceeds this (either way)")
    workers: int = opt(2, "processes for encoding")


@dataclass(frozen=True)
class TrainConfig:
    # where inputs are is not part of the key: their content is, as the stage's inputs (seqkd.train.stage_key)
    NOT_IN_KEY: ClassVar[tuple] = ("out_dir", "device", "threads", "log_every", "save_every", "data_dir",
                                   "distill_dir", "init_from", "kd_teacher")
    data_dir: str = opt("runs/default/data", "prepared data (the data stage's out_dir)")
    out_dir: str = opt("runs/default/teacher", "checkpoints, logs and metrics go here")
    model: ModelConfig = opt(ModelConfig(), "model sizes")
    targets: str = opt("ref", "training targets: the references, a distillation stage's output, or ref+seq-kd: "
                       "both, each source twice (Gordon & Duh 2019)", ("ref", "seq-kd", "seq-inter", "ref+seq-kd"))
    distill_dir: Optional[str] = opt(None, "distillation stage folder (for targets seq-kd, seq-inter, ref+seq-kd)")
    init_from: Optional[str] = opt(None, "start from this checkpoint's weights (fine-tuning)")
    kd_teacher: Optional[str] = opt(None, "the teacher checkpoint Word-KD learns from (kd_alpha > 0)")
    kd_alpha: float = opt(0.0, "Word-KD weight: loss = (1 - a) NLL + a CE(teacher, student); 0 = plain NLL")
    kd_temperature: float = opt(1.0, "Word-KD temperature T applied to both distributions")
    kd_topk: int = opt(0, "Word-KD: use only the teacher's top-k probabilities, renormalized (0 = all)")
    optimizer: str = opt("sgd", "optimizer", ("sgd", "adam"))
    lr: float = opt(1.0, "learning rate")
    lr_decay: float = opt(0.5, "multiply the learning rate by this when decaying")
    decay_start: int = opt(9, "decay at the end of every epoch from this one on (0 = never by epoch)")
    decay_on: str = opt("auto", "decay on validation results: 'ppl' from the first epoch whose perplexity rises, then "
                                "every epoch (seq2seq-attn, the paper's SGD recipe); 'bleu' at each epoch end whose "
                                "BLEU is not the best so far; 'none'; 'auto' = ppl with SGD, none with Adam "
                                "(seqkd.schedule)", ("auto", "ppl", "bleu", "none"))
    epochs: int = opt(13, "training epochs")
    curriculum: int = opt(0, "order the batches of the first N epochs from short to long sentences (seq2seq-attn's "
                             "curriculum option): alignment is found sooner on short sentences")
    max_steps: int = opt(0, "stop after this many updates (0 = no limit)")
    batch_size: int = opt(64, "sentences per batch (upper bound)")
    batch_tokens: int = opt(0, "target tokens per batch (upper bound; 0 = sentences only)")
    max_grad_norm: float = opt(5.0, "clip the gradient norm at this value")
    loss_norm: str = opt("sents", "divide a batch's summed loss by its sentences (seq2seq-attn's and OpenNMT-py's "
                                  "default, which the paper's SGD learning rates assume) or by its target tokens",
                         ("sents", "tokens"))
    valid_every: int = opt(0, "validate every N updates as well as after each epoch (0 = per epoch only)")
    valid_bleu: bool = opt(True, "compute greedy BLEU on the validation set when validating")
    valid_bleu_max: int = opt(1000, "validation sentences decoded for BLEU (0 = all)")
    patience: int = opt(0, "early stop after this many validations without a better BLEU (0 = never)")
    save_every: int = opt(500, "write last.pt every N updates (and at the end of each epoch and at exit)")
    seed: int = opt(3435, "random seed (seq2seq-attn's default)")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    bf16: str = opt("cuda", "bf16 autocast: on CUDA only ('cuda'); on CUDA and on CPUs with native bf16, AVX512-BF16 "
                            "or AMX ('auto'); everywhere ('always': emulated, slow on other CPUs); never "
                            "('off')", ("cuda", "auto", "always", "off"))
    threads: int = opt(0, "CPU threads for torch (0 = the cores this process may use, see taskset)")
    log_every: int = opt(50, "write a metrics line every N updates")


@dataclass(frozen=True)
class SearchConfig:
    """The search settings, declared once: translate, evaluate, the report and distillation take them all."""

    beam: int = opt(5, "beam size (1 = greedy)")
    alpha: float = opt(0.0, "length normalization: score / length**alpha (0 = none, as in the paper)")
    max_len_a: float = opt(1.5, "maximum output length = a * source length + b")
    max_len_b: int = opt(10, "maximum output length = a * source length + b")
    min_len: int = opt(1, "no end-of-sentence before this many tokens (1 = never an empty output, as fairseq)")
    batch_size: int = opt(64, "sentences per batch")
    batch_tokens: int = opt(0, "source tokens per batch (0 = sentences only)")

    def search(self) -> dict:
        """These settings as keyword arguments of seqkd.search.translate_ids."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(SearchConfig)}


@dataclass(frozen=True)
class DistillConfig(SearchConfig):
    # batch settings stay in the key: they change float rounding, and a restarted run must reproduce the shards of
    # the first one byte for byte
    NOT_IN_KEY: ClassVar[tuple] = ("teacher", "data_dir", "out_dir", "shard", "bleu_workers", "device", "threads")
    teacher: str = opt("runs/default/teacher/best.pt", "teacher checkpoint")
    data_dir: str = opt("runs/default/data", "prepared data whose training source is translated")
    out_dir: str = opt("runs/default/distill", "targets, shards and statistics go here")
    nbest: int = opt(1, "n-best list size for Seq-Inter (the paper's 35); 1 = Seq-KD only. A list longer than "
                        "the beam comes from a second search with beam = nbest")
    shard_size: int = opt(2000, "sentences per shard (each shard is written atomically)")
    shard: Optional[str] = opt(None, "only the shards i, i+n, i+2n, ... ('i/n', for independent processes); a last "
                                     "run without it joins them")
    bleu_workers: int = opt(1, "processes scoring Seq-Inter candidates")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    dtype: str = opt("fp32", "model dtype for the search (bf16/fp16 only on CUDA)", ("fp32", "bf16", "fp16"))
    threads: int = opt(0, "CPU threads for torch (0 = the cores this process may use, see taskset)")


@dataclass(frozen=True)
class ReportConfig(SearchConfig):
    """The report's evaluation settings (a preset's `evaluate` section; seqkd evaluate takes them too)."""

    passes: int = opt(3, "timed passes over the test set per search; the speed is the median")
    int8: bool = opt(False, "int8 weights and dynamically quantized activations (CPU; seqkd.inference)")


@dataclass(frozen=True)
class EvaluateConfig(ReportConfig):
    """seqkd evaluate: one checkpoint on a split of a data stage, with the report's settings."""

    checkpoint: str = opt("", "a .pt file written by seqkd train")
    data_dir: str = opt("", "a finished data stage (the checkpoint's vocabularies must be its own)")
    split: str = opt("test", "which split to translate", ("train", "valid", "test"))
    max_sentences: int = opt(0, "only the first N sentences (0 = all)")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    threads: int = opt(0, "CPU threads for torch (0 = the cores this process may use, see taskset)")
    out: Optional[str] = opt(None, "also write the full result, hypotheses included, as JSON to this file")


@dataclass(frozen=True)
class TranslateConfig(SearchConfig):
    """seqkd translate."""

    checkpoint: str = opt("", "a .pt file written by seqkd train")
    input: str = opt("-", "text file to translate, - for stdin")
    output: str = opt("-", "file for the translations, - for stdout (a file is written atomically)")
    nbest: int = opt(1, "hypotheses per sentence, written as 'id ||| hypothesis ||| score' lines when > 1")
    max_input_tokens: int = opt(250, "longer inputs are truncated (or rejected, see on_long)")
    on_long: str = opt("truncate", "what to do with inputs longer than max_input_tokens", ("truncate", "error"))
    data_dir: Optional[str] = opt(None, "check that the checkpoint's vocabularies are this data stage's")
    int8: bool = opt(False, "int8 weights and dynamically quantized activations (CPU; seqkd.inference); a "
                            "checkpoint written by seqkd quantize is int8 already")
    shortlist: Optional[str] = opt(None, "a vocabulary shortlist written by seqkd shortlist: each batch scores only "
                                         "the target words its source words make likely (seqkd.shortlist)")
    device: str = opt("auto", "auto, cpu, cuda or cuda:N")
    threads: int = opt(0, "CPU threads for torch (0 = the cores this process may use, see taskset)")


_YAML_SCALARS = (int, float, bool, str)


def _type_name(tp) -> str:
    """'int', 'str', ...; Optional[X] is X."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    return getattr(tp, "__name__", str(tp))


def _convert(value: Any, tp, where: str, choices=None) -> Any:
    """Check (and where safe, convert) a value against a field type; raise SeqkdError naming `where`."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _convert(value, args[0], where, choices)
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise SeqkdError(f"{where}: expected a mapping of {tp.__name__} keys, got {value!r}")
        return from_dict(tp, value, where)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            value = str(value)
            if choices and value not in choices:
                raise SeqkdError(f"{where}: {value!r} is not one of {', '.join(choices)}")
            return value
    else:
        return value
    hint = " (YAML reads off/on/no/yes unquoted as booleans: write 'off' in quotes)" if isinstance(value, bool) and tp is str else ""
    raise SeqkdError(f"{where}: expected {_type_name(tp)}, got {value!r}{hint}")


def _hints(cls) -> dict:
    return typing.get_type_hints(cls)


def from_dict(cls, values: dict, where: str = "config"):
    """Build dataclass `cls` from a (possibly partial) mapping; unknown keys are errors."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _hints(cls)
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            close = difflib.get_close_matches(str(key), fields, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise SeqkdError(f"{where}: unknown key '{key}'{hint}; known keys: {', '.join(fields)}")
        kwargs[key] = _convert(value, hints[key], f"{where}.{key}", fields[key].metadata.get("choices"))
    return cls(**kwargs)


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge: nested mappings merge, everything else is replaced."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def key_settings(cfg) -> dict:
    """The settings of a stage config that change the stage's result: the fields, but those of its class's
    NOT_IN_KEY and those at their default (nested ones too), so that an option added to seqkd later, at its
    default, leaves finished stages valid."""
    return {k: v for k, v in _non_default(cfg).items() if k not in type(cfg).NOT_IN_KEY}


def _non_default(cfg) -> dict:
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            value = _non_default(value)
            if value:
                out[f.name] = value
        elif value != (f.default if f.default is not dataclasses.MISSING else f.default_factory()):
            out[f.name] = value
    return out


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SeqkdError(f"{path}: config file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise SeqkdError(f"{path}: not valid YAML ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SeqkdError(f"{path}: expected a mapping of keys at the top level")
    return data


def add_arguments(parser: argparse.ArgumentParser, cls, prefix: str = "", defaults: dict | None = None) -> None:
    """One flag per field (nested dataclasses as --outer.inner); values parse as YAML scalars. The help shows
    each field's default, or its value in `defaults` (what a preset sets)."""
    hints = _hints(cls)
    defaults = defaults or {}
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        if dataclasses.is_dataclass(hints[f.name]):
            add_arguments(parser, hints[f.name], prefix=name + ".", defaults=defaults.get(f.name))
            continue
        choices = f.metadata.get("choices")
        default = f.default if f.default is not dataclasses.MISSING else None
        shown = f"(preset: {defaults[f.name]})" if f.name in defaults else (
            f"(default: {default})" if default not in (None, "") else "")
        helptext = (f.metadata.get("help", "") + " " + shown).strip()
        parser.add_argument(f"--{name}", dest=name, default=argparse.SUPPRESS, metavar=_type_name(hints[f.name]).upper()
                            if not choices else "{" + ",".join(choices) + "}", help=helptext)


def _field_type(cls, dotted: str):
    """The type of field `dotted` ('model.hidden') of dataclass `cls`, or None."""
    tp = cls
    for part in dotted.split("."):
        hints = _hints(tp) if dataclasses.is_dataclass(tp) else {}
        if part not in hints:
            return None
        tp = hints[part]
    origin_args = [a for a in typing.get_args(tp) if a is not type(None)]
    return origin_args[0] if typing.get_origin(tp) in (typing.Union, types.UnionType) else tp


def flags_to_dict(namespace: argparse.Namespace, cls) -> dict:
    """The flags given on the command line as a nested dict (only those given). Values parse as YAML scalars,
    except for text fields, which keep the text as typed (`--bf16 off` is 'off', not False)."""
    out: dict = {}
    dotted = {f.name for f in dataclasses.fields(cls)}
    for key, raw in vars(namespace).items():
        if key.split(".")[0] not in dotted:
            continue
        value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        if isinstance(value, (dict, list)) or (value is not None and not isinstance(value, _YAML_SCALARS)):
            value = raw  # a string that YAML reads as something else stays a string
        if _field_type(cls, key) is str and isinstance(raw, str):
            value = raw
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def build(cls, layers: list[tuple[dict, str]]):
    """Merge (mapping, where) layers in order and build `cls`; `where` names the source in errors."""
    merged: dict = {}
    for values, where in layers:
        from_dict(cls, values, where)  # validate each layer against its own source name
        merged = merge(merged, values)
    return from_dict(cls, merged, "config")
