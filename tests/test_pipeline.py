"""The make targets end to end on the tiny preset: plan, run, skip when done, report, clean."""
import json
import subprocess

import pytest

from tests.conftest import make


def test_make_n_shows_every_stage_and_runs_none(tmp_path):
    run = tmp_path / "tiny"
    plan = make("-n", "PRESET=tiny", f"RUN={run}")
    assert plan.returncode == 0, plan.stderr
    for stage in ("data", "train --preset tiny", "--teacher ", "distill", "--student seq-kd ", "report"):
        assert stage in plan.stdout, f"make -n does not show '{stage}'"
    assert not (run / "data").exists()  # -n only shows the plan


@pytest.mark.slow
def test_make_runs_every_stage_then_skips_them(tiny_run, tmp_path):
    report = json.loads((tiny_run / "report.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["teacher", "baseline", "word-kd", "seq-kd",
                                                   "seq-kd+seq-inter+word-kd"]
    teacher, *students = report["rows"]
    for row in students:  # every student: numbers, training facts and its paired bootstrap against the baseline
        assert row["updates"] > 0 and row["epochs"] == 1 and row["stopped"] == "epochs"
        assert 0 <= row["bleu_greedy"] <= 100 and row["greedy_sent_per_s"] > 0 and len(row["greedy_passes_s"]) == 3
        if row["name"] != "baseline":
            d = row["greedy_vs_baseline"]
            assert d["low"] <= d["delta"] <= d["high"] and 0 < d["p_value"] <= 1
        d = row["greedy_vs_beam"]  # greedy against the model's own beam search
        assert abs(d["delta"] - (row["bleu_greedy"] - row["bleu_beam"])) < 1e-6 and 0 < d["p_value"] <= 1
    tuned = students[-1]  # fine-tuned from the Seq-KD student: compared with it, greedy and beam
    assert tuned["parent"] == "Seq-KD" and "parent" not in students[-2]
    assert abs(tuned["beam_vs_parent"]["delta"] - (tuned["bleu_beam"] - students[-2]["bleu_beam"])) < 1e-6
    assert teacher["updates"] > 0 and teacher["parameters"] > students[0]["parameters"]
    assert (tiny_run / "report.png").exists() and (tiny_run / "report_curves.png").exists()
    md = (tiny_run / "report.md").read_text()
    assert "| Seq-KD |" in md and "[95% CI] p" in md
    assert "against the model it was fine-tuned from (Seq-KD): greedy " in md
    targets = (tiny_run / "distill" / "train.seqkd.de").read_text(encoding="utf-8").splitlines()
    assert len(targets) == 1489 and all(t.strip() for t in targets)  # the tiny teacher emits real sentences
    manifests = sorted(tiny_run.rglob("manifest.json"))
    assert len(manifests) == 3 + 4  # data, teacher, distill and four student runs
    mtimes = {p: p.stat().st_mtime_ns for p in manifests}

    again = make("PRESET=tiny", f"RUN={tiny_run}")
    assert again.returncode == 0 and "pipeline.cli" not in again.stdout
    assert {p: p.stat().st_mtime_ns for p in manifests} == mtimes

    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(tiny_run), str(copy)], check=True)
    assert make("clean-run", "PRESET=tiny", f"RUN={copy}").returncode == 0
    assert not copy.exists()


def test_an_unknown_preset_lists_the_presets(tmp_path):
    proc = make("-n", "PRESET=nosuch", f"RUN={tmp_path / 'x'}")
    assert proc.returncode != 0
    assert "preset 'nosuch' not found; presets:" in proc.stderr and "default" in proc.stderr
