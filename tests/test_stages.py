"""Stage identity: a stage's key holds its own settings and, by content, every input it reads from other stages,
so that a finished stage is reused only while all of them are unchanged (data -> teacher -> distill -> students
-> report)."""
import dataclasses
import json
import os
import subprocess
from pathlib import Path

import pytest

from seqkd.config import DataConfig
from seqkd.distill import distill
from seqkd.io import SeqkdError, changed_settings
from seqkd.prepare import prepare_data
from seqkd.train import train
from tests.conftest import make, tiny_train_config, write_toy_corpus
from tests.test_distill import config as distill_config

ROOT = Path(__file__).resolve().parents[1]


def test_changed_settings_names_each_nested_setting_with_its_old_and_new_value():
    old = {"lr": 1.0, "model": {"hidden": 32, "layers": 1}, "epochs": 2}
    new = {"lr": 1.0, "model": {"hidden": 64, "layers": 1}, "epochs": 3, "min_len": 1}
    assert changed_settings(old, new) == ["model.hidden: 32 -> 64", "epochs: 2 -> 3", "min_len: '(default)' -> 1"]
    assert changed_settings(old, old) == []


def test_a_corpus_edited_in_place_at_the_same_size_redoes_the_data_stage(tmp_path):
    write_toy_corpus(tmp_path / "corpus", n_train=40)
    cfg = DataConfig(corpus="text", src="en", tgt="de", train=str(tmp_path / "corpus" / "train"),
                     valid=str(tmp_path / "corpus" / "valid"), out_dir=str(tmp_path / "data"),
                     raw_dir=str(tmp_path / "raw"), vocab_size=100, max_ratio=6.0, workers=1)
    first = prepare_data(cfg)
    path = tmp_path / "corpus" / "train.de"
    text = path.read_text()
    path.write_text(text.replace("eht", "teh", 1))  # same size, other content
    assert len(path.read_text()) == len(text)
    second = prepare_data(cfg)
    assert second["key_hash"] != first["key_hash"]
    assert "teh" in (tmp_path / "data" / "train.de").read_text()
    assert json.loads((tmp_path / "data.stale" / "manifest.json").read_text())["key_hash"] == first["key_hash"]
    with pytest.raises(SeqkdError, match=r"^\S+data: finished with other settings \(vocab_size: 100 -> 90\)"):
        prepare_data(dataclasses.replace(cfg, vocab_size=90))


def test_a_student_is_redone_when_its_targets_change_and_kept_when_they_do_not(tiny_data, tiny_teacher, tmp_path):
    targets = tmp_path / "distill"
    distill(distill_config(tiny_data, tiny_teacher, targets, nbest=1))
    cfg = tiny_train_config(tiny_data, tmp_path / "student", targets="seq-kd", distill_dir=str(targets), epochs=1)
    first = train(cfg)
    assert train(cfg) == first and not (tmp_path / "student.stale").exists()  # same inputs: reused
    # the targets made again with another beam: the student was trained on something else, and is redone
    (targets / "manifest.json").unlink()
    for p in targets.glob("shards/*"):
        p.unlink()
    distill(distill_config(tiny_data, tiny_teacher, targets.with_name("other"), nbest=1, beam=1))
    for name in ("train.seqkd.tok.npy", "train.seqkd.off.npy"):
        (targets / name).write_bytes((targets.with_name("other") / name).read_bytes())
    second = train(cfg)
    assert second["key"]["inputs"]["targets"] != first["key"]["inputs"]["targets"]
    assert (tmp_path / "student.stale" / "manifest.json").exists()


def test_a_students_own_setting_changed_is_one_line_naming_it(tiny_data, tmp_path):
    cfg = tiny_train_config(tiny_data, tmp_path / "s", epochs=1)
    train(cfg)
    with pytest.raises(SeqkdError) as e:
        train(dataclasses.replace(cfg, lr=0.02, model=dataclasses.replace(cfg.model, hidden=24)))
    assert "\n" not in str(e.value)
    assert "(model.hidden: 16 -> 24; lr: 0.01 -> 0.02)" in str(e.value)  # in the order of the config


def test_a_word_kd_student_is_redone_after_its_teacher_is_retrained(tiny_data, tmp_path):
    teacher = tmp_path / "teacher"
    train(tiny_train_config(tiny_data, teacher, epochs=1))
    cfg = tiny_train_config(tiny_data, tmp_path / "wkd", epochs=1, kd_alpha=0.5, kd_teacher=str(teacher / "best.pt"))
    first = train(cfg)
    os.rename(teacher, tmp_path / "old-teacher")
    train(tiny_train_config(tiny_data, teacher, epochs=2))
    second = train(cfg)
    assert second["key"]["inputs"]["teacher"] != first["key"]["inputs"]["teacher"]
    stale = json.loads((tmp_path / "wkd.stale" / "manifest.json").read_text())
    assert stale["key_hash"] == first["key_hash"] != second["key_hash"]


@pytest.mark.slow
def test_make_stops_on_a_changed_setting_and_rebuilds_downstream_of_a_removed_stage(tiny_run, tmp_path):
    """The tiny preset end to end: a distillation setting changed in a copy of the preset stops make with one line
    naming it; once the distillation is removed, make redoes it, then the students trained on its targets and the
    report, and leaves the others alone."""
    run = tmp_path / "run"
    subprocess.run(["cp", "-a", str(tiny_run), str(run)], check=True)
    preset = tmp_path / "tiny-beam2.yaml"
    preset.write_text((ROOT / "pipeline/presets/tiny.yaml").read_text().replace("  beam: 3\n  nbest: 3",
                                                                                  "  beam: 2\n  nbest: 2"))
    manifests = {p: p.stat().st_mtime_ns for p in run.rglob("manifest.json")}
    stopped = make(f"PRESET={preset}", f"RUN={run}")
    assert stopped.returncode == 2
    errors = [line for line in stopped.stderr.splitlines() if "error:" in line]
    assert errors == [f"seqkd distill: error: {run}/distill: finished with other settings (beam: 3 -> 2; nbest: 3 -> 2)"
                      "; remove that folder to redo it with the new settings, or choose another run folder"]
    assert {p: p.stat().st_mtime_ns for p in run.rglob("manifest.json")} == manifests

    report = (run / "report.md").stat().st_mtime_ns
    subprocess.run(["rm", "-r", str(run / "distill")], check=True)
    rebuilt = make(f"PRESET={preset}", f"RUN={run}")
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]
    after = {p: p.stat().st_mtime_ns for p in run.rglob("manifest.json") if ".stale" not in str(p)}
    redone = sorted(str(p.parent.relative_to(run)) for p in after if after[p] != manifests.get(p))
    assert redone == ["distill", "students/student/seq-kd", "students/student/seq-kd+seq-inter+word-kd"]
    assert (run / "report.md").stat().st_mtime_ns > report
    assert "nothing to do" not in make(f"PRESET={preset}", f"RUN={run}").stderr  # settled: a no-op calls nothing
