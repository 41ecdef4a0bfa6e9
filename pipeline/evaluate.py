"""seqkd evaluate: BLEU (greedy and beam), perplexity, p(t=y), parameters, checkpoint size and decoding speed of
one checkpoint on a split of a data stage (see seqkd.evaluate). Prints a summary; --out writes everything as JSON."""
from __future__ import annotations

import sys

from pipeline.common import config_parser, entry, resolve, setup_logging
from seqkd import io
from seqkd.config import EvaluateConfig, ReportConfig, build, to_dict
from seqkd.device import set_threads
from seqkd.evaluate import evaluate
from seqkd.io import SeqkdError


def summary(r: dict) -> str:
    """A few lines a person reads, e.g.
    runs/x/teacher/best.pt on runs/x/data (test, 1000 sentences), cpu, 2 threads, batch 64
      17.2M parameters, 66.0 MB; perplexity 7.15; p(t=y) 2.5%
      greedy:  BLEU 28.01 (tokenized 29.10), 182.3 sentences/s, length ratio 1.024
      beam 5:  BLEU 30.59 (tokenized 31.70), 84.3 sentences/s, length ratio 0.953
    """
    lines = [f"{r['checkpoint']} on {r['data_dir']} ({r['split']}, {r['sentences']} sentences), {r['device']}, "
             f"{r['threads']} threads, batch {r['batch_size']}",
             f"  {r['parameters'] / 1e6:.1f}M parameters, {r['checkpoint_mb']} MB; perplexity {r['ppl']:.2f}; "
             f"p(t=y) {100 * r['p_beam_output']:.1f}%"]
    for name in ("greedy", "beam"):
        s = r[name]
        label = "greedy:" if name == "greedy" else f"beam {s['beam']}:"
        lines.append(f"  {label:<8} BLEU {s['bleu']:.2f} (tokenized {s['tokenized_bleu']:.2f}), "
                     f"{s['sent_per_s']:.1f} sentences/s (median of {len(s['passes_s'])}), length ratio "
                     f"{s['length_ratio']:.3f}")
    return "\n".join(lines)


def run(argv: list[str]) -> int:
    args = config_parser("seqkd evaluate", __doc__, EvaluateConfig, preset=False).parse_args(argv)
    cfg = resolve(EvaluateConfig, args, [])
    for name in ("checkpoint", "data_dir"):
        if not getattr(cfg, name):
            raise SeqkdError(f"--{name} is required")
    setup_logging(quiet=True)
    set_threads(cfg.threads)
    settings = build(ReportConfig, [({k: v for k, v in to_dict(cfg).items() if k in ReportConfig.__dataclass_fields__},
                                     "command line")])
    r = evaluate(cfg.checkpoint, cfg.data_dir, settings=settings, split=cfg.split, device=cfg.device,
                 max_sentences=cfg.max_sentences)
    r["data_dir"] = cfg.data_dir
    if cfg.out:
        io.write_json(cfg.out, r)
    print(summary(r))
    return 0


main = entry("seqkd evaluate", run)


if __name__ == "__main__":
    sys.exit(main())
