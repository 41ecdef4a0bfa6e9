"""The paired bootstrap: sacrebleu's p-value, and an interval that holds the observed difference."""
import numpy as np
import pytest
from sacrebleu.metrics import BLEU
from sacrebleu.significance import PairedTest

from seqkd.significance import paired_bootstrap

WORDS = "a small dog runs across the green field near an old red house while two children watch".split()


def corpus(n: int, seed: int, drop: float) -> tuple[list[str], list[str]]:
    """References of random words, and hypotheses that lose each word with probability `drop`."""
    rng = np.random.default_rng(seed)
    refs = [" ".join(rng.choice(WORDS, rng.integers(5, 12))) for _ in range(n)]
    hyps = [" ".join(w for w in r.split() if rng.random() > drop) or "a" for r in refs]
    return refs, hyps


def test_the_p_value_is_sacrebleus_paired_bootstrap():
    refs, base = corpus(200, 0, 0.3)
    _, better = corpus(200, 0, 0.15)
    ours = paired_bootstrap(base, better, refs, n_samples=300)
    test = PairedTest([("baseline", base), ("better", better)], {"BLEU": BLEU(force=True)}, [refs],
                      test_type="bs", n_samples=300)
    _, scores = test()
    assert ours.p_value == pytest.approx(scores["BLEU"][1].p_value)
    assert ours.delta == pytest.approx(scores["BLEU"][1].score - scores["BLEU"][0].score)


def test_a_clear_improvement_is_significant_and_a_rerun_of_the_same_system_is_not():
    refs, base = corpus(300, 1, 0.4)
    _, better = corpus(300, 1, 0.1)
    d = paired_bootstrap(base, better, refs, n_samples=200)
    assert d.delta > 10 and d.p_value < 0.01 and 0 < d.low < d.delta < d.high
    assert str(d) == f"{d.delta:+.2f} [{d.low:+.2f}, {d.high:+.2f}] p={d.p_value:.3f}"
    # the same system with other random errors (each word dropped with the same probability): chance
    rng = np.random.default_rng(9)
    rerun = [" ".join(w for w in r.split() if rng.random() > 0.4) or "a" for r in refs]
    noise = paired_bootstrap(base, rerun, refs, n_samples=200)
    assert noise.p_value > 0.05 and noise.low < 0 < noise.high
    assert paired_bootstrap(base, base, refs) == (0.0, 0.0, 0.0, 1.0)
