"""The student configurations of pipeline/configs/students: what each one trains on, from what, with what loss."""
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from pipeline import presets
from seqkd.checkpoint import read_checkpoint
from seqkd.config import TrainConfig, build
from seqkd.distill import distill
from seqkd.io import SeqkdError
from seqkd.train import Trainer, train
from tests.conftest import tiny_train_config
from tests.test_distill import config as distill_config

SMALL = {"model": {"layers": 1, "hidden": 16, "emb": 16, "dropout": 0.0}}


@pytest.fixture(scope="module")
def run_dir(tiny_data, tiny_teacher, tmp_path_factory) -> tuple[Path, dict]:
    """A preset's run folder with data, teacher and distillation in place, and the preset itself."""
    run = tmp_path_factory.mktemp("run")
    shutil.copytree(tiny_data, run / "data")
    (run / "teacher").mkdir()
    shutil.copy(tiny_teacher, run / "teacher" / "best.pt")
    distill(distill_config(run / "data", run / "teacher" / "best.pt", run / "distill"))
    preset_path = run / "preset.yaml"
    preset_path.write_text(yaml.safe_dump({
        "run_dir": str(run), "teacher": {"base": "teacher", **SMALL},
        "students": {"sizes": ["student"], "train": {"optimizer": "adam", "lr": 0.01, "epochs": 1, "batch_size": 16,
                                                     "valid_bleu_max": 4, "device": "cpu", "threads": 1},
                     "size_overrides": {"student": SMALL}, "finetune": {"optimizer": "sgd", "epochs": 1}}}))
    return run, presets.load_preset(str(preset_path))


def student_config(run_dir, name: str) -> TrainConfig:
    run, preset = run_dir
    return build(TrainConfig, presets.student_layers(preset, run, name, "student"))


def targets_of(trainer: Trainer) -> list[np.ndarray]:
    split = trainer.train_split
    return [np.asarray(split.tgt[i]) for i in range(len(split))]


def same(a: list[np.ndarray], b: list[np.ndarray]) -> bool:
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b))


@pytest.mark.parametrize("name,expected", [("baseline", "ref"), ("word-kd", "ref"), ("seq-kd", "train.seqkd"),
                                           ("seq-kd+word-kd", "train.seqkd"), ("seq-kd+seq-inter", "train.seqinter"),
                                           ("baseline+seq-inter", "train.seqinter")])
def test_each_configuration_trains_on_the_data_it_names(run_dir, name, expected):
    from seqkd.data import load_split

    run, _ = run_dir
    cfg = student_config(run_dir, name)
    refs = [np.asarray(x) for x in (lambda s: [s.tgt[i] for i in range(len(s))])(load_split(run / "data", "train"))]
    if cfg.init_from:  # a fine-tuned configuration: give it a parent to start from
        Path(cfg.init_from).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(train_parent(run_dir, cfg), cfg.init_from)
    got = targets_of(Trainer(cfg))
    if expected == "ref":
        assert same(got, refs)
    else:
        distilled = load_split(run / "data", "train", tgt_prefix=run / "distill" / expected)
        assert same(got, [np.asarray(distilled.tgt[i]) for i in range(len(distilled))])
        assert not same(got, refs), f"{name} trains on the references"


def train_parent(run_dir, cfg: TrainConfig) -> Path:
    """A quickly trained model of the student's size, to stand in for any parent."""
    run, _ = run_dir
    out = run / "stand-in-parent"
    if not (out / "best.pt").exists():
        train(tiny_train_config(run / "data", out, model=cfg.model, epochs=1))
    return out / "best.pt"


def test_word_kd_configurations_use_the_teacher_with_alpha_one_half(run_dir):
    for name in ("word-kd", "seq-kd+word-kd"):
        cfg = student_config(run_dir, name)
        assert cfg.kd_alpha == 0.5 and cfg.kd_teacher.endswith("teacher/best.pt")
    assert student_config(run_dir, "baseline").kd_alpha == 0.0


def test_fine_tuning_starts_from_the_parents_weights_at_learning_rate_0_1(run_dir):
    run, _ = run_dir
    cfg = student_config(run_dir, "seq-kd+seq-inter")
    assert cfg.init_from == str(run / "students" / "student" / "seq-kd" / "best.pt")
    assert cfg.lr == 0.1 and cfg.optimizer == "sgd" and cfg.targets == "seq-inter"
    Path(cfg.init_from).parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(train_parent(run_dir, cfg), cfg.init_from)
    parent = read_checkpoint(cfg.init_from)["model"]
    trainer = Trainer(cfg)
    assert all(torch.equal(parent[k], v) for k, v in trainer.model.state_dict().items())
    assert trainer.lineage()["init_from"]["path"] == cfg.init_from


def test_teacher_plus_seq_inter_fine_tunes_the_teacher(run_dir):
    run, preset = run_dir
    cfg = build(TrainConfig, presets.student_layers(preset, run, "teacher+seq-inter", "student"))
    assert cfg.init_from == str(run / "teacher" / "best.pt") and cfg.model.hidden == 16 and cfg.lr == 0.1


def test_a_configuration_whose_inputs_do_not_exist_names_the_make_target(run_dir, tmp_path):
    cfg = student_config(run_dir, "seq-kd+seq-inter")
    missing = cfg.__class__(**{**cfg.__dict__, "init_from": str(tmp_path / "none.pt")})
    with pytest.raises(SeqkdError, match="checkpoint not found"):
        Trainer(missing)
    no_distill = cfg.__class__(**{**cfg.__dict__, "init_from": None, "distill_dir": str(tmp_path)})
    with pytest.raises(SeqkdError, match="make distill"):
        Trainer(no_distill)


def test_the_checkpoint_records_data_teacher_and_parent(run_dir):
    run, _ = run_dir
    cfg = student_config(run_dir, "seq-kd+word-kd")
    train(cfg)
    lineage = read_checkpoint(Path(cfg.out_dir) / "best.pt")["lineage"]
    assert lineage["targets"] == "seq-kd" and lineage["distill_dir"] == str(run / "distill")
    assert lineage["teacher"] == str(run / "teacher" / "best.pt") and lineage["data_key"]


@pytest.mark.parametrize("name", presets.available(presets.PRESETS))
def test_every_shipped_preset_builds_the_config_of_every_stage(name):
    """A typo or an unknown key in a preset fails here, not an hour into its run."""
    from seqkd.config import DataConfig, DistillConfig

    preset = presets.load_preset(name)
    run = presets.run_dir(preset)
    build(DataConfig, presets.data_layers(preset, run))
    build(TrainConfig, presets.teacher_layers(preset, run))
    build(DistillConfig, presets.distill_layers(preset, run))
    students = preset.get("students", {})
    for size in students.get("sizes", ["student"]):
        for student in students.get("names", ["baseline"]):
            cfg = build(TrainConfig, presets.student_layers(preset, run, student, size))
            assert cfg.out_dir == str(presets.student_dir(run, student, size))


def test_a_preset_with_two_seeds_trains_each_student_twice_with_same_seed_parents(tmp_path):
    preset_path = tmp_path / "two-seeds.yaml"
    preset_path.write_text((presets.PRESETS / "tiny.yaml").read_text().replace(
        "students:\n", "students:\n  seeds: [7, 8]\n"))
    preset = presets.load_preset(str(preset_path))
    run = tmp_path / "run"
    first = build(TrainConfig, presets.student_layers(preset, run, "seq-kd", "student"))
    second = build(TrainConfig, presets.student_layers(preset, run, "seq-kd", "student", 8))
    assert (first.seed, first.out_dir) == (7, str(run / "students/student/seq-kd"))
    assert (second.seed, second.out_dir) == (8, str(run / "students/student/seq-kd.seed8"))
    tuned = build(TrainConfig, presets.student_layers(preset, run, "seq-kd+seq-inter+word-kd", "student", 8))
    assert tuned.init_from == str(run / "students/student/seq-kd.seed8/best.pt") and tuned.seed == 8
    from pipeline.plan import rules

    plan = rules(str(preset_path), run)
    assert "--student seq-kd --size student --student_seed 8" in plan
    assert f"{run}/students/student/seq-kd.seed8/manifest.json" in plan.split("STUDENT_TARGETS := ")[1].split("\n")[0]


def test_name_overrides_change_one_student_and_name_students_the_preset_trains(tmp_path):
    """`students.name_overrides.NAME` is the last word on that student's keys (ref+seq-kd's epochs are twice as
    long, so a preset gives it half as many), and the others keep the preset's."""
    text = (presets.PRESETS / "tiny.yaml").read_text()
    preset_path = tmp_path / "overrides.yaml"
    preset_path.write_text(text.replace("  names: [baseline, word-kd, seq-kd, seq-kd+seq-inter+word-kd]\n",
                                           "  names: [baseline, ref+seq-kd]\n  name_overrides: {ref+seq-kd: {epochs: 7}}\n"))
    preset = presets.load_preset(str(preset_path))
    run = tmp_path / "run"
    mixed = build(TrainConfig, presets.student_layers(preset, run, "ref+seq-kd", "student"))
    plain = build(TrainConfig, presets.student_layers(preset, run, "baseline", "student"))
    assert mixed.epochs == 7 and plain.epochs != 7 and mixed.targets == "ref+seq-kd"
    preset_path.write_text(text.replace("  names: [baseline, word-kd, seq-kd, seq-kd+seq-inter+word-kd]\n",
                                           "  names: [baseline]\n  name_overrides: {ref+seq-kd: {epochs: 7}}\n"))
    with pytest.raises(SeqkdError, match=r"overrides.yaml: students.name_overrides: 'ref\+seq-kd' is not one of"):
        presets.load_preset(str(preset_path))
