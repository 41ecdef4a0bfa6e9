"""Bad input, as a new user meets it: one line naming the file, line or option, exit status 2, nothing half-written.
Each case here gave a traceback, or a surprise, before (see the issue "No tracebacks, no surprises")."""
import errno
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from seqkd import io
from seqkd.config import DataConfig
from seqkd.io import SeqkdError
from seqkd.prepare import prepare_data
from seqkd.train import train
from tests.conftest import make, tiny_train_config, write_toy_corpus

ROOT = Path(__file__).resolve().parents[1]


def seqkd(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pipeline.cli", *args], cwd=ROOT, input=stdin, capture_output=True,
                          timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})


def one_line_error(proc: subprocess.CompletedProcess, *expected: str) -> str:
    """The process failed with status 2 and one line on stderr holding every `expected` piece."""
    err = proc.stderr.decode()
    assert proc.returncode == 2, err[-2000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1, err[-2000:]
    for piece in expected:
        assert piece in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("command", ["translate", "evaluate"])
def test_an_empty_or_text_file_given_as_a_checkpoint_says_what_it_is(command, tmp_path, tiny_data):
    empty, text = tmp_path / "empty.pt", tmp_path / "notes.pt"
    empty.write_bytes(b"")
    text.write_text("hello, these are notes\n")
    extra = ["--data_dir", str(tiny_data)] if command == "evaluate" else []
    one_line_error(seqkd(command, "--checkpoint", str(empty), *extra), "empty.pt: an empty file (0 bytes)")
    one_line_error(seqkd(command, "--checkpoint", str(text), *extra), "notes.pt: not a seqkd checkpoint",
                   "this file holds text")


def test_translate_names_the_line_of_invalid_utf8_in_a_file_and_on_stdin_and_a_missing_input(tiny_teacher, tmp_path):
    bad = tmp_path / "in.txt"
    bad.write_bytes(b"the cat sees\n\xff\xfe a dog\n")
    ckpt = ["translate", "--checkpoint", str(tiny_teacher), "--threads", "1"]
    out = tmp_path / "out.txt"
    one_line_error(seqkd(*ckpt, "--input", str(bad), "--output", str(out)), f"{bad}:2: invalid UTF-8")
    assert not out.exists()
    one_line_error(seqkd(*ckpt, stdin=bad.read_bytes()), "stdin:2: invalid UTF-8")
    one_line_error(seqkd(*ckpt, "--input", str(tmp_path / "nope.txt")), "--input", "nope.txt: file not found")


def test_translate_output_that_cannot_be_written_fails_at_once_or_leaves_nothing(tiny_teacher, tmp_path):
    src = tmp_path / "in.txt"
    src.write_text("the cat sees\n")
    ckpt = ["translate", "--checkpoint", str(tiny_teacher), "--threads", "1", "--input", str(src)]
    one_line_error(seqkd(*ckpt, "--output", str(src / "out.txt")), "cannot write there")  # its folder is a file
    if Path("/dev/full").exists():  # a device that is always full: written to directly, never replaced
        one_line_error(seqkd(*ckpt, "--output", "/dev/full"), "writing failed (No space left on device)")
        assert Path("/dev/full").is_char_device()


def test_translate_keeps_the_mode_of_an_existing_output_file(tiny_teacher, tmp_path):
    src, out = tmp_path / "in.txt", tmp_path / "out.txt"
    src.write_text("the cat sees\n")
    out.write_text("old\n")
    out.chmod(0o644)
    assert seqkd("translate", "--checkpoint", str(tiny_teacher), "--input", str(src), "--output", str(out)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o644 and out.read_text() != "old\n"


def test_new_files_honour_the_umask():
    old = os.umask(0o022)
    try:
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"seqkd-umask-{os.getpid()}.json"
        io.write_json(path, {})
        assert path.stat().st_mode & 0o777 == 0o644
        path.unlink()
    finally:
        os.umask(old)


def test_a_full_disk_during_the_data_stage_leaves_no_stage_files(tmp_path, monkeypatch):
    write_toy_corpus(tmp_path / "corpus", n_train=40)
    cfg = DataConfig(corpus="text", src="en", tgt="de", train=str(tmp_path / "corpus" / "train"),
                     valid=str(tmp_path / "corpus" / "valid"), out_dir=str(tmp_path / "data"),
                     raw_dir=str(tmp_path / "raw"), vocab_size=100, max_ratio=6.0, workers=1)
    real, calls = np.save, []

    def save(f, array, *a, **kw):
        calls.append(1)
        if len(calls) == 3:  # spm.model and two arrays are written: then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(f, array, *a, **kw)

    monkeypatch.setattr(np, "save", save)
    with pytest.raises(SeqkdError, match=r"data: could not write the data stage \(No space left on device\); nothing"):
        prepare_data(cfg)
    assert list((tmp_path / "data").iterdir()) == [] if (tmp_path / "data").exists() else True


def test_a_full_disk_while_saving_a_checkpoint_is_one_line_and_keeps_the_last_good_one(tiny_data, tmp_path,
                                                                                       monkeypatch):
    cfg = tiny_train_config(tiny_data, tmp_path, epochs=2)
    real, calls = torch.save, []

    def save(obj, f, *a, **kw):
        calls.append(1)
        if len(calls) == 3:  # best.pt and last.pt of epoch 1 are written, then the disk is full
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
        return real(obj, f, *a, **kw)

    monkeypatch.setattr(torch, "save", save)
    with pytest.raises(SeqkdError, match=r"could not save the checkpoint \(.*MiB free there\); the last good "
                                         r"last.pt is kept"):
        train(cfg)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert train(cfg)["epochs_done"] == 2  # resumes from the kept last.pt


def test_beam_larger_than_the_vocabulary_is_refused_by_every_command(tiny_teacher, tiny_data, tmp_path):
    one_line_error(seqkd("evaluate", "--checkpoint", str(tiny_teacher), "--data_dir", str(tiny_data),
                         "--beam", "500"), "--beam 500 is larger than the target vocabulary")
    one_line_error(seqkd("distill", "--teacher", str(tiny_teacher), "--data_dir", str(tiny_data), "--out_dir",
                         str(tmp_path / "d"), "--beam", "500", "--threads", "1"),
                   "--beam 500 is larger than the target vocabulary")
    assert not (tmp_path / "d" / "manifest.json").exists()


def preset_with_evaluate(tmp_path: Path, evaluate: str) -> Path:
    text = (ROOT / "pipeline/presets/tiny.yaml").read_text()
    path = tmp_path / "bad.yaml"
    path.write_text(text[:text.index("evaluate:")] + "evaluate:\n" + evaluate)
    return path


@pytest.mark.parametrize("evaluate,message", [("  beam: three\n", "evaluate.beam: expected int, got 'three'"),
                                              ("  batchsize: 32\n", "evaluate: unknown key 'batchsize' (did you "
                                                                    "mean 'batch_size'?)")])
def test_the_whole_preset_is_checked_before_anything_runs(tmp_path, evaluate, message):
    run = tmp_path / "run"
    proc = make(f"PRESET={preset_with_evaluate(tmp_path, evaluate)}", f"RUN={run}")
    assert proc.returncode == 2 and message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not run.exists()


def test_make_student_with_an_unknown_name_lists_the_names(tmp_path):
    proc = make("student", "NAME=seqkd", "PRESET=tiny", f"RUN={tmp_path / 'run'}")
    assert proc.returncode == 2
    assert "NAME=seqkd SIZE=student is not a student of this project; NAME is one of: baseline" in proc.stderr
    assert "seq-kd" in proc.stderr and "No rule to make target" not in proc.stderr


def test_make_n_and_a_failed_plan_create_nothing(tmp_path):
    run = tmp_path / "run"
    assert make("-n", "PRESET=tiny", f"RUN={run}").returncode == 0
    assert make("PRESET=nosuch", f"RUN={run}").returncode == 2
    assert not run.exists()


def test_a_no_op_make_in_a_finished_run_writes_nothing(tiny_run):
    before = {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")}
    proc = make("PRESET=tiny", f"RUN={tiny_run}")
    assert proc.returncode == 0 and "pipeline.cli" not in proc.stdout
    assert {p: p.stat().st_mtime_ns for p in tiny_run.rglob("*")} == before


def test_a_run_folder_remembers_its_corpus(tmp_path):
    write_toy_corpus(tmp_path / "corpus", n_train=60)
    run = tmp_path / "run"
    corpus = [f"{k}={tmp_path / 'corpus' / k.lower()}" for k in ("TRAIN", "VALID", "TEST")]
    assert make("data", "PRESET=tiny", f"RUN={run}", "CORPUS=text", "SRC=en", "TGT=de", *corpus).returncode == 0
    (ROOT / "pipeline/presets/tiny.yaml").touch()  # as after a checkout: the preset is newer than the data
    plan = make("-n", "teacher", "PRESET=tiny", f"RUN={run}")
    assert plan.returncode == 0, plan.stderr
    assert "pipeline.cli data" not in plan.stdout and "--teacher" in plan.stdout


def test_the_data_stage_gives_byte_identical_files_in_two_folders(tmp_path):
    write_toy_corpus(tmp_path / "corpus", n_train=40)
    for name in ("a", "b"):
        prepare_data(DataConfig(corpus="text", src="en", tgt="de", train=str(tmp_path / "corpus" / "train"),
                                valid=str(tmp_path / "corpus" / "valid"), out_dir=str(tmp_path / name),
                                raw_dir=str(tmp_path / "raw"), vocab_size=100, max_ratio=6.0, workers=1))
    files = sorted(p.name for p in (tmp_path / "a").iterdir() if p.name not in ("manifest.json", "log.txt"))
    assert "spm.model" in files
    assert all((tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes() for f in files)


def test_help_names_the_flags_that_work(tmp_path):
    train = seqkd("train", "--help").stdout.decode()
    assert "--teacher" in train.split("options:")[0] and "OPTIONAL" not in train
    assert "(default: None)" not in train
    preset = seqkd("train", "--preset", "tiny", "--student", "seq-kd", "--help").stdout.decode()
    assert "(preset: 16)" in " ".join(preset.split())  # model.hidden of the tiny preset's students
    from pipeline.common import config_parser
    from seqkd.config import EvaluateConfig, TranslateConfig

    for cls in (EvaluateConfig, TranslateConfig):
        parser = config_parser("x", "", cls, preset=False)
        assert all(a.help for a in parser._actions), [a.dest for a in parser._actions if not a.help]


def test_evaluate_prints_a_summary_a_person_reads(tiny_teacher, tiny_data):
    proc = seqkd("evaluate", "--checkpoint", str(tiny_teacher), "--data_dir", str(tiny_data), "--passes", "1",
                 "--threads", "1")
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    lines = proc.stdout.decode().splitlines()
    assert len(lines) == 4 and lines[0].startswith(f"{tiny_teacher} on {tiny_data} (test, 12 sentences)")
    assert lines[2].split()[:2] == ["greedy:", "BLEU"] and lines[3].split()[:3] == ["beam", "5:", "BLEU"]
