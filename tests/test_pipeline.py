"""The make targets end to end on the tiny preset: plan, run, skip when done, report, clean."""
import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def make(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=env)


@pytest.mark.slow
def test_make_runs_every_stage_then_skips_them(tmp_path):
    run = tmp_path / "tiny"
    plan = make("-n", "PRESET=tiny", f"RUN={run}")
    assert plan.returncode == 0, plan.stderr
    for stage in ("data", "train --preset tiny", "--teacher_run", "distill", "--student seq-kd ", "report"):
        assert stage in plan.stdout, f"make -n does not show '{stage}'"
    assert not (run / "data").exists()  # -n only shows the plan

    first = make("PRESET=tiny", f"RUN={run}")
    assert first.returncode == 0, first.stderr[-3000:]
    report = json.loads((run / "report.json").read_text())
    assert [r["name"] for r in report["rows"]] == ["teacher", "baseline", "word-kd", "seq-kd",
                                                   "seq-kd+seq-inter+word-kd"]
    assert "| Seq-KD |" in (run / "report.md").read_text()
    manifests = sorted(run.rglob("manifest.json"))
    assert len(manifests) == 3 + 4  # data, teacher, distill and four student runs
    mtimes = {p: p.stat().st_mtime_ns for p in manifests}

    again = make("PRESET=tiny", f"RUN={run}")
    assert again.returncode == 0 and "pipeline.cli train" not in again.stdout
    assert {p: p.stat().st_mtime_ns for p in manifests} == mtimes

    assert make("clean-run", "PRESET=tiny", f"RUN={run}").returncode == 0
    assert not run.exists()


def test_an_unknown_preset_lists_the_presets(tmp_path):
    proc = make("-n", "PRESET=nosuch", f"RUN={tmp_path / 'x'}")
    assert proc.returncode != 0
    assert "preset 'nosuch' not found; presets:" in proc.stderr and "default" in proc.stderr
