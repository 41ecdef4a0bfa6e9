"""How sure a BLEU difference is: sacrebleu's paired bootstrap resampling (Koehn 2004), with the difference's 95%
confidence interval.

The resamples are sacrebleu's own (`sacrebleu.significance`, `_paired_bs_test`): the same random generator, seed
(12345, or $SACREBLEU_SEED) and index draws, the same per-sentence sufficient statistics, and the same p-value
(the share of resamples whose centred |difference| exceeds the observed one, with +1 smoothing), so the p-value
equals `sacrebleu --paired-bs`'s (tests/test_significance.py checks it), except for two identical outputs, where
that formula gives 1 / (n + 1) and this module 1. What sacrebleu does not report is the
interval of the difference itself: here the 2.5th and 97.5th percentiles of system minus baseline over the same
resamples.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Sequence

import numpy as np
from sacrebleu.metrics import BLEU

N_SAMPLES = 1000


class Difference(NamedTuple):
    delta: float  # system BLEU - baseline BLEU on the whole test set
    low: float  # 95% confidence interval of the difference
    high: float
    p_value: float  # paired bootstrap, two-sided: is the difference due to chance?

    def __str__(self) -> str:
        """'+1.23 [+0.40, +2.05] p=0.002'"""
        return f"{self.delta:+.2f} [{self.low:+.2f}, {self.high:+.2f}] p={self.p_value:.3f}"


def _seed() -> int | None:
    seed = os.environ.get("SACREBLEU_SEED", "12345")
    return None if seed.lower() == "none" else int(seed)


def paired_bootstrap(baseline: Sequence[str], system: Sequence[str], refs: Sequence[str], *,
                     n_samples: int = N_SAMPLES) -> Difference:
    """Corpus BLEU of `system` against `baseline` (detokenized hypotheses, one reference each, sacrebleu's
    default BLEU), resampled `n_samples` times with sentences paired."""
    if not (len(baseline) == len(system) == len(refs)):
        raise ValueError(f"paired test needs as many lines in each: {len(baseline)}, {len(system)}, {len(refs)}")
    if list(baseline) == list(system):  # sacrebleu's formula would give 1 / (n_samples + 1) here: no evidence
        return Difference(0.0, 0.0, 0.0, 1.0)
    metric = BLEU(force=True)
    rng = np.random.default_rng(_seed())
    idxs = rng.choice(len(system), size=(n_samples, len(system)), replace=True)
    real, resampled = [], []
    for hyps in (baseline, system):
        stats = metric._extract_corpus_statistics(hyps, [list(refs)])
        real.append(metric._aggregate_and_compute(stats).score)
        stats = np.array(stats, dtype="float32")
        resampled.append(np.array([metric._compute_score_from_stats(s.sum(0)).score for s in stats[idxs]]))
    diffs = resampled[1] - resampled[0]  # (n_samples,)
    centred = np.abs(diffs) - np.abs(diffs).mean()
    p = (int(np.sum(centred > abs(real[1] - real[0]))) + 1) / (n_samples + 1)
    low, high = np.percentile(diffs, [2.5, 97.5])
    return Difference(real[1] - real[0], float(low), float(high), p)
