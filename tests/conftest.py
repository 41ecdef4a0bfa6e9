"""Shared fixtures: a tiny prepared corpus and a tiny trained model, built once per test session."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from seqkd.config import DataConfig, ModelConfig, TrainConfig
from seqkd.prepare import prepare_data

os.environ.setdefault("OMP_NUM_THREADS", "1")
torch.set_num_threads(1)  # identical numerics in every process a test starts

WORDS = "the a cat dog sees runs big small house tree red blue one two three near far old new".split()
TINY_MODEL = ModelConfig(layers=1, hidden=16, emb=16, dropout=0.0)


def write_toy_corpus(folder: Path, n_train: int = 160, seed: int = 0) -> None:
    """A toy "translation": each word reversed, the sentence reversed, with '!' appended."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", n_train), ("valid", 12), ("test", 12)):
        src = [" ".join(rng.choice(WORDS, rng.integers(2, 7))) for _ in range(count)]
        tgt = [" ".join(w[::-1] for w in reversed(s.split())) + " !" for s in src]
        (folder / f"{split}.en").write_text("".join(s + "\n" for s in src), encoding="utf-8")
        (folder / f"{split}.de").write_text("".join(t + "\n" for t in tgt), encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_toy_corpus(root / "corpus")
    cfg = DataConfig(corpus="text", src="en", tgt="de", train=str(root / "corpus" / "train"),
                     valid=str(root / "corpus" / "valid"), test=str(root / "corpus" / "test"),
                     out_dir=str(root / "data"), raw_dir=str(root / "raw"), vocab_size=120, max_ratio=6.0,
                     workers=1)
    prepare_data(cfg)
    return root / "data"


def tiny_train_config(data_dir: Path, out_dir: Path, **kw) -> TrainConfig:
    base = dict(data_dir=str(data_dir), out_dir=str(out_dir), model=TINY_MODEL, optimizer="adam", lr=0.01,
                epochs=2, batch_size=16, valid_bleu_max=12, log_every=5, save_every=1000, seed=7, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


TEACHER_MODEL = ModelConfig(layers=1, hidden=32, emb=32, dropout=0.0)


def make(*args: str, timeout: int = 600):
    """make in the repository, one thread per process (the tests' numerics), output captured."""
    import subprocess

    return subprocess.run(["make", "--no-print-directory", *args], cwd=Path(__file__).resolve().parents[1],
                          capture_output=True, text=True, timeout=timeout, env={**os.environ, "OMP_NUM_THREADS": "1"})


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """`make PRESET=tiny` once per test session (about a minute); tests that change it work on a copy
    (`cp -a` keeps the times make compares)."""
    run = tmp_path_factory.mktemp("tiny-run") / "tiny"
    proc = make("PRESET=tiny", f"RUN={run}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run


@pytest.fixture(scope="session")
def tiny_teacher(tiny_data, tmp_path_factory) -> Path:
    """A teacher that has learned the toy task well enough to give real, non-empty translations (about 5 s):
    distillation tests that compare its outputs then compare words, not empty files."""
    from seqkd.train import train

    out = tmp_path_factory.mktemp("teacher")
    train(tiny_train_config(tiny_data, out, model=TEACHER_MODEL, epochs=30, lr=0.02))
    return out / "best.pt"
