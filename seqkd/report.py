"""The report: the paper's Table 1 for one run, as report.md, report.json and a BLEU-versus-speed plot."""
from __future__ import annotations

import logging
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from seqkd import io
from seqkd.evaluate import cached_evaluate

log = logging.getLogger(__name__)

TITLES = {"teacher": "Teacher", "baseline": "Baseline", "word-kd": "Word-KD", "seq-kd": "Seq-KD",
          "baseline+seq-inter": "Baseline + Seq-Inter", "word-kd+seq-inter": "Word-KD + Seq-Inter",
          "seq-kd+seq-inter": "Seq-KD + Seq-Inter", "seq-kd+word-kd": "Seq-KD + Word-KD",
          "seq-kd+seq-inter+word-kd": "Seq-KD + Seq-Inter + Word-KD", "teacher+seq-inter": "Teacher + Seq-Inter"}


@dataclass(frozen=True)
class Entry:
    """One model of the table: its group (teacher / student / student-small), configuration name, checkpoint."""

    group: str
    name: str
    checkpoint: Path
    shape: str  # e.g. "4x1000"


def fmt(x, nd=1) -> str:
    return "" if x is None else f"{x:,.{nd}f}"


def signed(x, nd=1) -> str:
    return "" if x is None else f"{x:+.{nd}f}"


def evaluate_all(entries: list[Entry], data_dir: Path, eval_dir: Path, **settings) -> dict[Entry, dict]:
    results = {}
    for e in entries:
        started = time.time()
        results[e] = cached_evaluate(e.checkpoint, data_dir, eval_dir / f"{e.group}.{e.name}.json", **settings)
        log.info("%s %s: BLEU %.2f greedy / %.2f beam (%.0f s)", e.group, e.name, results[e]["greedy"]["bleu"],
                 results[e]["beam"]["bleu"], time.time() - started)
    return results


def rows(entries: list[Entry], results: dict[Entry, dict]) -> list[dict]:
    """Table rows; deltas are against the same group's first model (the baseline, or the teacher)."""
    out, base = [], {}
    for e in entries:
        r = results[e]
        base.setdefault(e.group, r)
        b = base[e.group]
        out.append({"group": e.group, "shape": e.shape, "name": e.name, "model": TITLES.get(e.name, e.name),
                    "checkpoint": str(e.checkpoint), "parameters": r["parameters"],
                    "bleu_greedy": r["greedy"]["bleu"], "delta_greedy": round(r["greedy"]["bleu"] - b["greedy"]["bleu"], 2),
                    "bleu_beam": r["beam"]["bleu"], "delta_beam": round(r["beam"]["bleu"] - b["beam"]["bleu"], 2),
                    "ppl": r["ppl"], "p_beam_output": r["p_beam_output"],
                    "greedy_sent_per_s": r["greedy"]["sent_per_s"], "beam_sent_per_s": r["beam"]["sent_per_s"],
                    "greedy_tok_per_s": r["greedy"]["tok_per_s"], "beam_tok_per_s": r["beam"]["tok_per_s"],
                    "tokenized_bleu_greedy": r["greedy"]["tokenized_bleu"],
                    "tokenized_bleu_beam": r["beam"]["tokenized_bleu"], "lineage": r.get("lineage")})
    return out


def markdown(table: list[dict], meta: dict, paper: dict | None) -> str:
    beam = meta["beam"]
    head = ["Model", "Params", "BLEU K=1", "ΔK=1", f"BLEU K={beam}", f"ΔK={beam}", "PPL", "p(t=ŷ)",
            "greedy sent/s", f"beam-{beam} sent/s"]
    if paper:
        head += ["paper K=1", f"paper K={beam}"]
    lines = [f"# seqkd report: {meta['preset']}", "",
             f"{meta['date']}; test set: {meta['test']} ({meta['sentences']} sentences); device {meta['device']}, "
             f"{meta['threads']} threads, batch {meta['batch_size']} sentences; beam {beam}, length normalization "
             f"alpha {meta['alpha']}.", "",
             "BLEU: sacrebleu on detokenized text, `" + meta["signature"] + "`. Δ: against the same-size baseline "
             "(the teacher for teacher rows). PPL: perplexity of the test references. p(t=ŷ): mean probability of "
             "the model's own beam output. Speeds: the whole test set, model loaded, after a warm-up batch.", "",
             "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    group = None
    for r in table:
        if r["group"] != group:
            group = r["group"]
            lines.append(f"| **{group} {r['shape']}** |" + " |" * (len(head) - 1))
        cells = [r["model"], f"{r['parameters'] / 1e6:.1f}M", fmt(r["bleu_greedy"], 2), signed(r["delta_greedy"], 2),
                 fmt(r["bleu_beam"], 2), signed(r["delta_beam"], 2), fmt(r["ppl"], 2),
                 f"{100 * r['p_beam_output']:.1f}%", fmt(r["greedy_sent_per_s"]), fmt(r["beam_sent_per_s"])]
        if paper:
            figures = paper.get(f"{r['group']}/{r['name']}", [None, None])
            cells += [fmt(figures[0]), fmt(figures[1])]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", *meta.get("summary", []), ""]
    if meta.get("plot"):
        lines += [f"![BLEU against decoding speed]({meta['plot']})", ""]
    lines += ["Tokenized BLEU (multi-bleu.perl style, for papers that report it), greedy / beam:", ""]
    lines += [f"- {r['group']} {r['model']}: {fmt(r['tokenized_bleu_greedy'], 2)} / {fmt(r['tokenized_bleu_beam'], 2)}"
              for r in table]
    return "\n".join(lines) + "\n"


def summary(table: list[dict]) -> list[str]:
    """The paper's two claims, checked on this run: Seq-KD greedy vs baseline greedy, and student greedy speed
    against the teacher's beam search."""
    by = {(r["group"], r["name"]): r for r in table}
    teacher = by.get(("teacher", "teacher"))
    out = []
    for group in ("student", "student-small"):
        base, kd = by.get((group, "baseline")), by.get((group, "seq-kd"))
        if base and kd:
            out.append(f"- {group}: Seq-KD greedy BLEU {kd['bleu_greedy']:.2f} vs baseline greedy "
                       f"{base['bleu_greedy']:.2f} ({kd['bleu_greedy'] - base['bleu_greedy']:+.2f}) and baseline beam "
                       f"{base['bleu_beam']:.2f}; Seq-KD greedy vs its own beam: {kd['bleu_greedy']:.2f} / "
                       f"{kd['bleu_beam']:.2f}.")
        if kd and teacher:
            out.append(f"- {group}: Seq-KD greedy decodes {kd['greedy_sent_per_s'] / teacher['beam_sent_per_s']:.1f}x "
                       f"as many sentences/s as the teacher's beam search, at {kd['bleu_greedy']:.2f} vs "
                       f"{teacher['bleu_beam']:.2f} BLEU.")
    return out


def plot(table: list[dict], path: Path, beam: int) -> bool:
    """BLEU against sentences/s (greedy and beam per model); False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.warning("matplotlib is not installed (pip install seqkd[plot]): no plot")
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
    with io.atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return True


def write_report(entries: list[Entry], data_dir: Path, run_dir: Path, *, preset: str, beam: int = 5,
                 batch_size: int = 64, device: str = "auto", alpha: float = 0.0, max_len_a: float = 1.5,
                 max_len_b: int = 10, min_len: int = 1, paper: dict | None = None) -> dict:
    """Evaluate every entry (cached per checkpoint) and write report.md, report.json and report.png."""
    started = time.time()
    results = evaluate_all(entries, data_dir, run_dir / "eval", beam=beam, batch_size=batch_size, device=device,
                           alpha=alpha, max_len_a=max_len_a, max_len_b=max_len_b, min_len=min_len)
    table = rows(entries, results)
    first = results[entries[0]]
    meta = {"preset": preset, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "test": f"{data_dir}/test",
            "sentences": first["sentences"], "device": first["device"], "threads": first["threads"],
            "batch_size": batch_size, "beam": beam, "alpha": alpha, "signature": first["greedy"]["signature"],
            "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, Python "
                       f"{platform.python_version()}, torch {torch.__version__}"}
    meta["summary"] = summary(table)
    if plot(table, run_dir / "report.png", beam):
        meta["plot"] = "report.png"
    io.write_json(run_dir / "report.json", {"meta": meta, "rows": table, "paper": paper})
    with io.atomic_open(run_dir / "report.md") as f:
        f.write(markdown(table, meta, paper))
    log.info("report written to %s (%.0f s)", run_dir / "report.md", time.time() - started)
    return {"meta": meta, "rows": table}
