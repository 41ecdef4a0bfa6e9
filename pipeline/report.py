"""seqkd report: evaluate every model of a preset's run (teacher and students) and write the paper's Table 1 as
report.md and report.json in the run folder, with a BLEU-versus-speed plot (report.png, needs matplotlib)."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline import presets
from pipeline.common import entry, setup_logging
from pipeline.plan import report_config
from seqkd.config import TrainConfig, build
from seqkd.device import set_threads
from seqkd.io import SeqkdError
from seqkd.report import Entry, write_report


def entries(preset: dict, run: Path) -> list[Entry]:
    """The teacher, then per student size and seed the baseline first and the other configurations in preset
    order."""
    students = preset.get("students", {})
    names = students.get("names", ["baseline"])

    def shape(layers) -> str:
        m = build(TrainConfig, layers).model
        return f"{m.layers}x{m.hidden}"

    out = [Entry("teacher", "teacher", run / "teacher" / "best.pt", shape(presets.teacher_layers(preset, run)))]
    if "teacher+seq-inter" in names:
        out.append(Entry("teacher", "teacher+seq-inter", run / "teacher+seq-inter" / "best.pt", out[0].shape))
    seeds = presets.seeds(preset)
    for size in students.get("sizes", ["student"]):
        ordered = sorted((n for n in names if n != "teacher+seq-inter"), key=lambda n: n != "baseline")
        for seed in seeds:
            label = f"seed {seed}" if len(seeds) > 1 else ""
            for name in ordered:
                layers = presets.student_layers(preset, run, name, size, seed)
                folder = presets.student_dir(run, name, size, seed, seeds[0])
                out.append(Entry(size, name, folder / "best.pt", shape(layers), label))
    missing = [str(e.checkpoint) for e in out if not e.checkpoint.exists()]
    if missing:
        raise SeqkdError(f"not trained yet: {', '.join(missing)} (run `make students` / `make teacher` first)")
    return out


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="seqkd report", description=__doc__)
    p.add_argument("--preset", required=True)
    p.add_argument("--run_dir")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (0 = the cores this process may use)")
    args = p.parse_args(argv)
    preset = presets.load_preset(args.preset)
    run_dir = presets.run_dir(preset, args.run_dir)
    setup_logging(run_dir)
    set_threads(args.threads)
    report = write_report(entries(preset, run_dir), run_dir / "data", run_dir, preset=preset["_name"],
                          settings=report_config(preset), device=args.device, paper=preset.get("paper"))
    print((run_dir / "report.md").read_text(encoding="utf-8"))
    return 0 if report else 1


main = entry("seqkd report", run)


if __name__ == "__main__":
    sys.exit(main())
