import subprocess
import sys
from pathlib import Path

import pytest

from seqkd.checkpoint import load_model
from seqkd.io import SeqkdError
from seqkd.translate_text import translate_lines

ROOT = Path(__file__).resolve().parents[1]


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", "translate", "--device", "cpu", "--threads", "1",
                           *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=120)


def test_translates_stdin_to_stdout_keeping_empty_lines(tiny_teacher):
    proc = cli("--checkpoint", str(tiny_teacher), "--beam", "3", stdin="the cat sees\n\na big dog runs\n")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.split("\n")
    assert len(lines) == 4 and lines[1] == "" and lines[3] == ""  # three lines out for three in
    model, src_vocab, tgt_vocab, _ = load_model(tiny_teacher)
    expected = [h[0][0] for h in translate_lines(model, src_vocab, tgt_vocab, ["the cat sees", "a big dog runs"],
                                                 beam=3)]
    assert [lines[0], lines[2]] == expected and all(expected)  # real translations, in input order


def test_nbest_lines_are_id_hypothesis_score(tiny_teacher, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("the cat sees\na dog\n")
    out = tmp_path / "out.txt"
    proc = cli("--checkpoint", str(tiny_teacher), "--beam", "4", "--nbest", "3", "--input", str(src),
               "--output", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = [line.split(" ||| ") for line in out.read_text().splitlines()]
    assert [r[0] for r in rows] == ["0", "0", "0", "1", "1", "1"]
    scores = [float(r[2]) for r in rows[:3]]
    assert scores == sorted(scores, reverse=True)


def test_translation_matches_the_library_and_needs_only_the_checkpoint(tiny_teacher):
    model, src_vocab, tgt_vocab, _ = load_model(tiny_teacher)
    expected = [h[0][0] for h in translate_lines(model, src_vocab, tgt_vocab, ["a big dog runs"], beam=2)]
    proc = cli("--checkpoint", str(tiny_teacher), "--beam", "2", stdin="a big dog runs\n")
    assert proc.stdout.splitlines() == expected


def test_long_lines_are_truncated_with_a_warning_or_rejected(tiny_teacher):
    long_line = " ".join(["cat"] * 80) + "\n"
    proc = cli("--checkpoint", str(tiny_teacher), "--max_input_tokens", "20", stdin=long_line)
    assert proc.returncode == 0 and "input line 1" in proc.stderr and "translating the first 20" in proc.stderr
    proc = cli("--checkpoint", str(tiny_teacher), "--max_input_tokens", "20", "--on_long", "error", stdin=long_line)
    assert proc.returncode == 2 and "input line 1" in proc.stderr and "max_input_tokens 20" in proc.stderr


def test_beam_and_nbest_larger_than_allowed_are_clear_errors(tiny_teacher):
    model, src_vocab, tgt_vocab, _ = load_model(tiny_teacher)
    with pytest.raises(SeqkdError, match="larger than the target vocabulary"):
        list(translate_lines(model, src_vocab, tgt_vocab, ["a"], beam=len(tgt_vocab)))
    proc = cli("--checkpoint", str(tiny_teacher), "--beam", "2", "--nbest", "3", stdin="a\n")
    assert proc.returncode == 2 and "--nbest 3 is larger than --beam 2" in proc.stderr


def test_a_checkpoint_from_another_vocabulary_is_rejected(tiny_teacher, tmp_path):
    import torch

    from seqkd.checkpoint import read_checkpoint

    state = read_checkpoint(tiny_teacher)
    state["vocab"]["src"]["pieces"] = state["vocab"]["src"]["pieces"][:-1] + ["▁zzz"]
    other = tmp_path / "other.pt"
    torch.save(state, other)
    data_dir = read_checkpoint(tiny_teacher)["lineage"]["data_dir"]  # the data the teacher was trained on
    proc = cli("--checkpoint", str(other), "--data_dir", data_dir, stdin="a\n")
    assert proc.returncode == 2 and "source vocabulary" in proc.stderr and "differs from the data" in proc.stderr


def test_a_missing_or_broken_checkpoint_is_one_clear_line(tmp_path):
    proc = cli("--checkpoint", str(tmp_path / "nope.pt"), stdin="a\n")
    assert proc.returncode == 2 and proc.stderr.strip() == f"seqkd translate: error: {tmp_path / 'nope.pt'}: checkpoint not found"
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    proc = cli("--checkpoint", str(bad), stdin="a\n")
    assert proc.returncode == 2 and "bad.pt: not a seqkd checkpoint" in proc.stderr
