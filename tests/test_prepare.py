import dataclasses
import gzip
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqkd.config import DataConfig, build
from seqkd.data import load_split
from seqkd.io import SeqkdError
from seqkd.prepare import load_vocabs, prepare_data

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
WORDS = "the a cat dog sees runs big small house tree red blue one two three".split()


def write_corpus(folder: Path, n: int = 60, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for split, count in (("train", n), ("valid", 8), ("test", 8)):
        src = [" ".join(rng.choice(WORDS, rng.integers(3, 9))) for _ in range(count)]
        (folder / f"{split}.en").write_text("".join(s + "\n" for s in src), encoding="utf-8")
        tgt = [" ".join(w[::-1] for w in reversed(s.split())) for s in src]  # a toy "translation"
        (folder / f"{split}.de").write_text("".join(t + "\n" for t in tgt), encoding="utf-8")


def text_config(tmp_path: Path, **kw) -> DataConfig:
    src_dir = tmp_path / "corpus"
    return DataConfig(corpus="text", src="en", tgt="de", train=str(src_dir / "train"), valid=str(src_dir / "valid"),
                      test=str(src_dir / "test"), out_dir=str(tmp_path / "out"), raw_dir=str(tmp_path / "raw"),
                      vocab_size=100, workers=1, **kw)


@pytest.fixture
def corpus(tmp_path):
    (tmp_path / "corpus").mkdir()
    write_corpus(tmp_path / "corpus")
    return tmp_path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_prepares_arrays_vocabularies_and_a_manifest(corpus):
    manifest = prepare_data(text_config(corpus))
    out = corpus / "out"
    assert manifest["splits"]["train"]["pairs_kept"] == 60
    train = load_split(out, "train")
    assert len(train) == 60 and train.src.lens.min() > 0
    src_vocab, tgt_vocab = load_vocabs(out)
    text = (corpus / "corpus" / "train.en").read_text().splitlines()
    assert src_vocab.decode(train.src[0]) == text[0]  # SentencePiece round trip through our ids
    assert tgt_vocab.decode(train.tgt[5]) == (corpus / "corpus" / "train.de").read_text().splitlines()[5]
    assert (out / "train.de").read_text().splitlines()[5] == (corpus / "corpus" / "train.de").read_text().splitlines()[5]


def test_a_finished_stage_is_not_redone(corpus):
    cfg = text_config(corpus)
    prepare_data(cfg)
    before = {p.name: p.stat().st_mtime_ns for p in (corpus / "out").iterdir()}
    prepare_data(cfg)
    assert {p.name: p.stat().st_mtime_ns for p in (corpus / "out").iterdir()} == before
    with pytest.raises(SeqkdError, match="other settings.*vocab_size"):
        prepare_data(dataclasses.replace(cfg, vocab_size=70))


def test_mismatched_line_counts_name_both_files_and_counts(corpus):
    path = corpus / "corpus" / "valid.de"
    path.write_text(path.read_text() + "extra line\n")
    with pytest.raises(SeqkdError) as e:
        prepare_data(text_config(corpus))
    msg = str(e.value)
    assert "valid.en" in msg and "valid.de" in msg and "8" in msg and "9" in msg
    assert leftovers(corpus / "out") == []


def test_invalid_utf8_names_the_file_and_line(corpus):
    path = corpus / "corpus" / "train.de"
    lines = path.read_bytes().split(b"\n")
    lines[6] = b"caf\xe9 au lait"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(SeqkdError, match=r"train\.de:7: invalid UTF-8"):
        prepare_data(text_config(corpus))
    assert leftovers(corpus / "out") == []


def test_an_empty_file_is_an_error(corpus):
    (corpus / "corpus" / "test.en").write_text("")
    with pytest.raises(SeqkdError, match=r"test\.en.*empty"):
        prepare_data(text_config(corpus))
    assert leftovers(corpus / "out") == []


def test_empty_and_overlong_training_lines_are_dropped_and_counted(corpus):
    src, tgt = corpus / "corpus" / "train.en", corpus / "corpus" / "train.de"
    s, t = src.read_text().splitlines(), tgt.read_text().splitlines()
    s[3], t[10] = "", ""  # two empty lines
    s[20] = t[20] = " ".join(["house"] * 40)  # too long
    s[30], t[30] = "cat", " ".join(["eert"] * 12)  # length ratio
    src.write_text("\n".join(s) + "\n")
    tgt.write_text("\n".join(t) + "\n")
    manifest = prepare_data(text_config(corpus, max_tokens=30, max_ratio=4.0))
    stats = manifest["splits"]["train"]
    assert stats["dropped"] == {"empty": 2, "too_long": 1, "length_ratio": 1}
    assert stats["pairs_kept"] == 56 and stats["pairs_read"] == 60
    kept = (corpus / "out" / "train.en").read_text().splitlines()
    assert len(kept) == 56 and "cat" not in kept


def test_unknown_keys_and_values_list_what_exists():
    with pytest.raises(SeqkdError, match="unknown key 'vocab_sise'.*did you mean 'vocab_size'"):
        build(DataConfig, [({"vocab_sise": 10}, "preset.yaml")])
    with pytest.raises(SeqkdError, match="'europarl' is not one of default, multi30k, iwslt14, wmt14, text"):
        build(DataConfig, [({"corpus": "europarl"}, "preset.yaml")])
    with pytest.raises(SeqkdError, match="expected int"):
        build(DataConfig, [({"vocab_size": "many"}, "preset.yaml")])


def test_a_missing_file_is_named(corpus):
    os.remove(corpus / "corpus" / "valid.de")
    with pytest.raises(SeqkdError, match=r"valid\.de"):
        prepare_data(text_config(corpus))


def test_the_cli_exits_nonzero_with_one_clear_line(corpus):
    (corpus / "corpus" / "test.en").write_text("")
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "data", "--corpus", "text", "--src", "en",
                           "--tgt", "de", "--train", str(corpus / "corpus" / "train"),
                           "--valid", str(corpus / "corpus" / "valid"), "--test", str(corpus / "corpus" / "test"),
                           "--out_dir", str(corpus / "out"), "--raw_dir", str(corpus / "raw")],
                          cwd=root, capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("seqkd data: error:") and "test.en" in proc.stderr


def test_default_corpus_prepares_offline(tmp_path):
    cfg = DataConfig(corpus="default", n_train=600, n_valid=20, n_test=20, vocab_size=2000,
                     out_dir=str(tmp_path / "out"), raw_dir=str(tmp_path / "raw"), workers=1)
    manifest = prepare_data(cfg)
    s = manifest["splits"]
    assert s["train"]["pairs_kept"] + sum(s["train"]["dropped"].values()) == 600
    assert s["train"]["pairs_kept"] > 590 and [s["valid"]["pairs_kept"], s["test"]["pairs_kept"]] == [20, 20]
    assert manifest["src_lang"] == "en" and manifest["tgt_lang"] == "de"


def test_a_changed_generator_never_reuses_a_cached_corpus(tmp_path, monkeypatch):
    from seqkd import prepare, synth

    cfg = DataConfig(corpus="default", n_train=30, n_valid=5, n_test=5, raw_dir=str(tmp_path / "raw"))
    first = prepare.raw_corpus(cfg)[2]["train"][1]
    monkeypatch.setattr(synth, "fingerprint", lambda: "changed")
    monkeypatch.setattr(synth, "generate", lambda *a: {s: (["a b ."] * 5, ["x y ."] * 5) for s in
                                                          ("train", "valid", "test")})
    second = prepare.raw_corpus(cfg)[2]["train"][1]
    assert first.parent != second.parent and second.parent.name.endswith("-changed")
    assert second.read_text() == "x y .\n" * 5 and first.read_text() != second.read_text()


@pytest.mark.slow
@pytest.mark.skipif(not (SHARED / "multi30k" / "train.en.gz").exists(),
                    reason="../shared/data/multi30k (the multi30k mirror) is not present")
def test_multi30k_from_the_shared_mirror(tmp_path):
    cfg = DataConfig(corpus="multi30k", mirror=str(SHARED / "multi30k"), vocab_size=8000,
                     out_dir=str(tmp_path / "out"), raw_dir=str(tmp_path / "raw"))
    manifest = prepare_data(cfg)
    s = manifest["splits"]
    dropped = sum(s["train"]["dropped"].values())
    assert s["train"]["pairs_read"] == 29000 and s["train"]["pairs_kept"] == 29000 - dropped
    assert s["valid"]["pairs_kept"] == 1014 and s["test"]["pairs_kept"] == 1000
    assert dropped < 100
    with gzip.open(SHARED / "multi30k" / "test.de.gz", "rt", encoding="utf-8") as f:
        assert (tmp_path / "out" / "test.de").read_text(encoding="utf-8").split("\n")[:5] == f.read().split("\n")[:5]
