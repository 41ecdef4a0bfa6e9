"""The report: the paper's Table 1 for one run, as report.md and report.json, with how sure each difference is
(paired bootstrap against the same-size baseline), how each model was trained (updates, epochs, time, why it
stopped), a BLEU-versus-speed plot (report.png) and the learning curves (report_curves.png)."""
from __future__ import annotations

import json
import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from seqkd import io
from seqkd.config import ReportConfig, to_dict
from seqkd.device import SPEED_FLAGS, cpu_flags
from seqkd.evaluate import cached_evaluate
from seqkd.prepare import read_lines
from seqkd.significance import paired_bootstrap
from seqkd.speed import matmul_gflops

log = logging.getLogger(__name__)

TITLES = {"teacher": "Teacher", "baseline": "Baseline", "word-kd": "Word-KD", "seq-kd": "Seq-KD",
          "ref+seq-kd": "References + Seq-KD", "baseline+seq-inter": "Baseline + Seq-Inter",
          "word-kd+seq-inter": "Word-KD + Seq-Inter", "seq-kd+seq-inter": "Seq-KD + Seq-Inter",
          "seq-kd+word-kd": "Seq-KD + Word-KD", "seq-kd+seq-inter+word-kd": "Seq-KD + Seq-Inter + Word-KD",
          "ref+seq-kd+seq-inter+word-kd": "References + Seq-KD, fine-tuned: Seq-Inter + Word-KD",
          "teacher+seq-inter": "Teacher + Seq-Inter"}
BUSY_CORES = 0.25  # other processes using more than this many cores while a speed was measured: a warning
SPREAD = 1.5  # slowest / fastest timed pass (of at least MIN_PASS_S), or matmul calibration, above this: a warning
MIN_PASS_S = 1.0  # shorter passes vary by nature (an idle 2-core VM: matmul speed varies by 10-20%)
SEARCHES = ("greedy", "beam")


@dataclass(frozen=True)
class Entry:
    """One model of the table: its group (teacher / student / student-small), configuration name, checkpoint, and
    seed label ("" for the first seed; a row is compared with the baseline of its group and seed)."""

    group: str
    name: str
    checkpoint: Path
    shape: str  # e.g. "4x1000"
    seed: str = ""

    @property
    def label(self) -> str:
        return TITLES.get(self.name, self.name) + (f" ({self.seed})" if self.seed else "")


def fmt(x, nd=1) -> str:
    return "" if x is None else f"{x:,.{nd}f}"


def evaluate_all(entries: list[Entry], data_dir: Path, eval_dir: Path, *, settings: ReportConfig,
                 device: str) -> dict[Entry, dict]:
    results = {}
    for e in entries:
        started = time.time()
        suffix = f".{e.seed}" if e.seed else ""
        results[e] = cached_evaluate(e.checkpoint, data_dir, eval_dir / f"{e.group}.{e.name}{suffix}.json",
                                     settings=settings, device=device)
        log.info("%s %s: BLEU %.2f greedy / %.2f beam (%.0f s)", e.group, e.label, results[e]["greedy"]["bleu"],
                 results[e]["beam"]["bleu"], time.time() - started)
    return results


def training(checkpoint: Path) -> dict:
    """How the model of `checkpoint` was trained, from its stage's manifest (empty when there is none)."""
    manifest = io.read_manifest(checkpoint.parent) or {}
    best = manifest.get("best", {})
    return {"updates": manifest.get("updates"), "epochs": manifest.get("epochs_done"),
            "train_s": manifest.get("train_s"), "stopped": manifest.get("stopped"),
            "best_step": best.get("step"), "best_valid_bleu": best.get("valid_bleu")}


def baseline_of(entry: Entry, entries: list[Entry]) -> Entry | None:
    """The model a row is compared with: the baseline of its group and seed (the teacher for teacher rows)."""
    name = "teacher" if entry.group == "teacher" else "baseline"
    return next((e for e in entries if e.group == entry.group and e.name == name and e.seed == entry.seed), None)


def rows(entries: list[Entry], results: dict[Entry, dict], refs: list[str]) -> list[dict]:
    """Table rows; each non-baseline row carries its paired bootstrap against its baseline, greedy and beam."""
    out = []
    for e in entries:
        r, base = results[e], baseline_of(e, entries)
        row = {"group": e.group, "shape": e.shape, "name": e.name, "seed": e.seed, "model": e.label,
               "checkpoint": str(e.checkpoint), "parameters": r["parameters"], "ppl": r["ppl"],
               "p_beam_output": r["p_beam_output"], "lineage": r.get("lineage"), **training(e.checkpoint)}
        for s in SEARCHES:
            row[f"bleu_{s}"] = r[s]["bleu"]
            row[f"tokenized_bleu_{s}"] = r[s]["tokenized_bleu"]
            row[f"{s}_sent_per_s"] = r[s]["sent_per_s"]
            row[f"{s}_tok_per_s"] = r[s]["tok_per_s"]
            row[f"{s}_passes_s"] = r[s].get("passes_s")
            row[f"{s}_other_cores"] = r[s].get("other_cores")
            row[f"{s}_length_ratio"] = r[s].get("length_ratio")
            if base is not None and base != e:
                d = paired_bootstrap(results[base][s]["hypotheses"], r[s]["hypotheses"], refs)
                row[f"{s}_vs_baseline"] = d._asdict()
        # greedy against the model's own beam search (the paper: a Seq-KD student loses little without the beam)
        row["greedy_vs_beam"] = paired_bootstrap(r["beam"]["hypotheses"], r["greedy"]["hypotheses"], refs)._asdict()
        parent = parent_of(r, entries)
        if parent is not None:  # a fine-tuned model against the model it started from
            row["parent"] = parent.label
            for s in SEARCHES:
                row[f"{s}_vs_parent"] = paired_bootstrap(results[parent][s]["hypotheses"], r[s]["hypotheses"],
                                                         refs)._asdict()
        out.append(row)
    return out


def parent_of(result: dict, entries: list[Entry]) -> Entry | None:
    """The entry a fine-tuned model started from (its lineage's init_from), when it is in the report."""
    path = ((result.get("lineage") or {}).get("init_from") or {}).get("path")
    if not path:
        return None
    return next((e for e in entries if Path(e.checkpoint).resolve() == Path(path).resolve()), None)


def diff_cell(row: dict, search: str, against: str = "baseline") -> str:
    d = row.get(f"{search}_vs_{against}")
    if d is None:
        return ""
    return f"{d['delta']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}] p={d['p_value']:.3f}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    return f"{seconds / 60:.1f} min" if seconds < 3600 else f"{seconds / 3600:.2f} h"


def markdown(table: list[dict], meta: dict, paper: dict | None) -> str:
    beam = meta["beam"]
    lines = [f"# seqkd report: {meta['preset']}", "",
             f"{meta['date']}; test set: {meta['test']} ({meta['sentences']} sentences); {meta['machine']}; "
             f"device {meta['device']}, {meta['threads']} threads, batch {meta['batch_size']} sentences; beam "
             f"{beam}, length normalization alpha {meta['alpha']}.", "",
             "BLEU: sacrebleu on detokenized text, `" + meta["signature"] + "`. Δ: against the baseline of the "
             "same size and seed (the teacher for teacher rows), with the 95% confidence interval and p-value of "
             "sacrebleu's paired bootstrap (1,000 resamples). PPL: perplexity of the test references. p(t=ŷ): "
             "mean probability of the model's own beam output.", ""]
    head = ["Model", "Params", "BLEU K=1", "Δ K=1 [95% CI] p", f"BLEU K={beam}", f"Δ K={beam} [95% CI] p", "PPL",
            "p(t=ŷ)"]
    if paper:
        head += ["paper K=1", f"paper K={beam}"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    group = None
    for r in table:
        if r["group"] != group:
            group = r["group"]
            lines.append(f"| **{group} {r['shape']}** |" + " |" * (len(head) - 1))
        cells = [r["model"], f"{r['parameters'] / 1e6:.1f}M", fmt(r["bleu_greedy"], 2), diff_cell(r, "greedy"),
                 fmt(r["bleu_beam"], 2), diff_cell(r, "beam"), fmt(r["ppl"], 2), f"{100 * r['p_beam_output']:.1f}%"]
        if paper:
            figures = paper.get(f"{r['group']}/{r['name']}", [None, None])
            cells += [fmt(figures[0]), fmt(figures[1])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Training and decoding speed. Updates, epochs and time come from each model's stage manifest; "
              "'stopped' says whether it ran its epochs, was stopped by patience (no better validation score), or "
              "reached max_steps. Speeds: the whole test set, after a warm-up batch, the median of "
              f"{meta['passes']} passes (all passes in report.json).", ""]
    head = ["Model", "updates", "epochs", "train time", "stopped", "best valid BLEU (update)", "greedy sent/s",
            f"beam-{beam} sent/s", "greedy tok/s"]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in table:
        best = f"{r['best_valid_bleu']:.2f} ({r['best_step']:,})" if r["best_valid_bleu"] is not None else ""
        cells = [f"{r['group']} {r['model']}", fmt(r["updates"], 0), fmt(r["epochs"], 0), duration(r["train_s"]),
                 r["stopped"] or "", best, fmt(r["greedy_sent_per_s"]), fmt(r["beam_sent_per_s"]),
                 fmt(r["greedy_tok_per_s"], 0)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *meta.get("summary", []), ""]
    if meta.get("warnings"):
        lines += ["**Speed warnings**", "", *[f"- {w}" for w in meta["warnings"]], ""]
    for key, title in (("plot", "BLEU against decoding speed"), ("curves", "Learning curves")):
        if meta.get(key):
            lines += [f"![{title}]({meta[key]})", ""]
    lines += ["Tokenized BLEU (multi-bleu.perl style, for papers that report it), greedy / beam:", ""]
    lines += [f"- {r['group']} {r['model']}: {fmt(r['tokenized_bleu_greedy'], 2)} / {fmt(r['tokenized_bleu_beam'], 2)}"
              for r in table]
    return "\n".join(lines) + "\n"


def summary(table: list[dict]) -> list[str]:
    """The paper's claims, checked on this run, each difference with its paired bootstrap: Seq-KD greedy vs baseline
    greedy and vs its own beam search, a fine-tuned model vs the model it started from, and student greedy speed
    against the teacher's beam search."""
    by = {(r["group"], r["name"], r["seed"]): r for r in table}
    teacher = by.get(("teacher", "teacher", ""))
    out = []
    for (group, name, seed), kd in by.items():
        where = group + (f" ({seed})" if seed else "")
        if kd.get("parent"):
            out.append(f"- {where}: {TITLES.get(name, name)} against the model it was fine-tuned from "
                       f"({kd['parent']}): greedy {diff_cell(kd, 'greedy', 'parent')}, beam "
                       f"{diff_cell(kd, 'beam', 'parent')}; its greedy vs its own beam: {kd['bleu_greedy']:.2f} / "
                       f"{kd['bleu_beam']:.2f}, {diff_cell(kd, 'greedy', 'beam')}.")
        if name not in ("seq-kd", "ref+seq-kd"):
            continue
        title = TITLES[name]
        base = by.get((group, "baseline", seed))
        if base:
            out.append(f"- {where}: {title} greedy BLEU {kd['bleu_greedy']:.2f} vs baseline greedy "
                       f"{base['bleu_greedy']:.2f}: {diff_cell(kd, 'greedy')}; baseline beam {base['bleu_beam']:.2f}; "
                       f"{title} greedy vs its own beam: {kd['bleu_greedy']:.2f} / {kd['bleu_beam']:.2f}, "
                       f"{diff_cell(kd, 'greedy', 'beam')}.")
        if teacher:
            out.append(f"- {where}: {title} greedy decodes {kd['greedy_sent_per_s'] / teacher['beam_sent_per_s']:.1f}x "
                       f"as many sentences/s as the teacher's beam search, at {kd['bleu_greedy']:.2f} vs "
                       f"{teacher['bleu_beam']:.2f} BLEU.")
    return out


def warnings(table: list[dict], calibration: list[float]) -> list[str]:
    """Signs that the machine was busy while speeds were measured: other processes' CPU use, passes that
    disagree, a matrix product that ran at another speed at the end than at the start."""
    out = []
    for r in table:
        for s in SEARCHES:
            other, passes = r.get(f"{s}_other_cores"), r.get(f"{s}_passes_s") or []
            if other is not None and other > BUSY_CORES:
                out.append(f"{r['group']} {r['model']}, {s}: other processes used {other:.2f} CPU cores meanwhile")
            if len(passes) > 1 and min(passes) >= MIN_PASS_S and max(passes) > SPREAD * min(passes):
                out.append(f"{r['group']} {r['model']}, {s}: passes took {min(passes):.2f} to {max(passes):.2f} s")
    if len(calibration) == 2 and max(calibration) > SPREAD * min(calibration):
        out.append(f"a plain matrix product ran at {calibration[0]:.0f} GFLOP/s before the evaluations and "
                   f"{calibration[1]:.0f} after")
    if out:
        out.append("speeds measured on a busy machine are too low and their ratios unreliable: rerun the report "
                   "(remove eval/) with nothing else running")
    return out


def calibrate() -> float:
    """GFLOP/s of a plain matrix product now: the median of three short measurements."""
    return round(sorted(matmul_gflops(0.2) for _ in range(3))[1], 1)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install seqkd[plot]): no plots")
        return None
    return plt


def _save(fig, path: Path) -> None:
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def plot(table: list[dict], path: Path, beam: int) -> bool:
    """BLEU against sentences/s (greedy and beam per model); False when matplotlib is not installed."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, ax = plt.subplots(figsize=(8, 5.5))
    markers = {"teacher": "s", "student": "o", "student-small": "^"}
    for r in table:
        label = f"{r['group']} {r['model']}"
        xs, ys = [r["greedy_sent_per_s"], r["beam_sent_per_s"]], [r["bleu_greedy"], r["bleu_beam"]]
        line, = ax.plot(xs, ys, marker=markers.get(r["group"], "o"), linestyle=":", label=label)
        ax.annotate("K=1", (xs[0], ys[0]), fontsize=7, xytext=(3, 3), textcoords="offset points", color=line.get_color())
        ax.annotate(f"K={beam}", (xs[1], ys[1]), fontsize=7, xytext=(3, 3), textcoords="offset points",
                    color=line.get_color())
    ax.set_xscale("log")
    ax.set_xlabel("decoding speed (sentences/s, log scale)")
    ax.set_ylabel("BLEU")
    ax.set_title("BLEU against decoding speed: greedy (K=1) and beam search")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True


def validations(checkpoint: Path) -> list[dict]:
    """The validation records of a model's metrics.jsonl (step, valid_ppl, valid_bleu), in order."""
    path = checkpoint.parent / "metrics.jsonl"
    if not path.exists():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in records if "valid_ppl" in r]


def updates_before(checkpoint: Path) -> int:
    """The updates of the models a fine-tuned model started from (its manifest's lineage.init_from), 0 for a model
    trained from scratch: a fine-tuned model's curve continues where its parent's ended."""
    manifest = io.read_manifest(checkpoint.parent) or {}
    parent = ((manifest.get("lineage") or {}).get("init_from") or {}).get("path")
    parent_manifest = parent and io.read_manifest(Path(parent).parent)
    if not parent_manifest:
        return 0
    return parent_manifest.get("updates", 0) + updates_before(Path(parent))


def plot_curves(entries: list[Entry], path: Path) -> bool:
    """Validation BLEU and perplexity against updates for every model, so that a reader sees whether each had
    converged (a fine-tuned model's updates continue its parent's)."""
    plt = _pyplot()
    if plt is None:
        return False
    fig, (ax_bleu, ax_ppl) = plt.subplots(1, 2, figsize=(12, 4.8))
    for e in entries:
        points = validations(e.checkpoint)
        if not points:
            continue
        offset = updates_before(e.checkpoint)
        steps = [offset + p["step"] for p in points]
        label = f"{e.group} {e.label}"
        if any("valid_bleu" in p for p in points):
            ax_bleu.plot(steps, [p.get("valid_bleu") for p in points], marker=".", label=label)
        ax_ppl.plot(steps, [p["valid_ppl"] for p in points], marker=".", label=label)
    ax_bleu.set_title("validation BLEU (greedy)")
    ax_ppl.set_title("validation perplexity (references)")
    ax_ppl.set_yscale("log")
    for ax in (ax_bleu, ax_ppl):
        ax.set_xlabel("updates")
        ax.grid(True, alpha=0.3)
    ax_bleu.legend(fontsize=7, loc="best")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)
    return True


def write_report(entries: list[Entry], data_dir: Path, run_dir: Path, *, preset: str,
                 settings: ReportConfig = ReportConfig(), device: str = "auto", paper: dict | None = None) -> dict:
    """Evaluate every entry (cached per checkpoint) and write report.md, report.json, report.png and
    report_curves.png."""
    started = time.time()
    calibration = [calibrate()]
    results = evaluate_all(entries, data_dir, run_dir / "eval", settings=settings, device=device)
    calibration.append(calibrate())
    tgt_lang = io.read_manifest(data_dir)["tgt_lang"]
    refs = read_lines(data_dir / f"test.{tgt_lang}")[:results[entries[0]]["sentences"]]
    table = rows(entries, results, refs)
    first = results[entries[0]]
    beam = settings.beam
    meta = {"preset": preset, "settings": to_dict(settings), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
            "test": f"{data_dir}/test", "sentences": first["sentences"], "device": first["device"],
            "threads": first["threads"], "batch_size": settings.batch_size, "beam": beam, "alpha": settings.alpha,
            "passes": settings.passes,
            "signature": first["greedy"]["signature"], "matmul_gflops": calibration,
            "machine": f"{platform.machine()}, CPU flags: {' '.join(cpu_flags()) or 'none of ' + '/'.join(SPEED_FLAGS)}, "
                       f"torch {torch.__version__}"}
    meta["summary"] = summary(table)
    meta["warnings"] = warnings(table, calibration)
    if plot(table, run_dir / "report.png", beam):
        meta["plot"] = "report.png"
    if plot_curves(entries, run_dir / "report_curves.png"):
        meta["curves"] = "report_curves.png"
    io.write_json(run_dir / "report.json", {"meta": meta, "rows": table, "paper": paper})
    with io.atomic_open(run_dir / "report.md") as f:
        f.write(markdown(table, meta, paper))
    log.info("report written to %s (%.0f s)", run_dir / "report.md", time.time() - started)
    return {"meta": meta, "rows": table}

