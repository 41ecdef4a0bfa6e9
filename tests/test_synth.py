"""Tests for the synthetic default corpus (seqkd.synth): determinism, shape, and the properties Seq-KD relies on."""
import collections
import hashlib
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from seqkd import synth
from seqkd.synth import NP, Clause, Sentence

ROOT = Path(__file__).resolve().parents[1]


def _digest(corpus: dict) -> str:
    text = "\n".join("\n".join(corpus[split][side]) for split in ("train", "valid", "test") for side in (0, 1))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@pytest.fixture(scope="module")
def default() -> dict:
    return synth.generate()


@pytest.fixture(scope="module")
def small() -> dict:
    return synth.generate(seed=3, n_train=2000, n_valid=300, n_test=200)


@pytest.fixture(scope="module")
def lex() -> synth.Lexicon:
    return synth.build_lexicon()


def _noun(lex: synth.Lexicon, gender: str) -> synth.Entry:
    """The most frequent noun whose only target is of `gender`."""
    return next(e for e in lex["noun"] if len(e.tgt) == 1 and e.tgt[0].gender == gender)


def test_same_seed_same_bytes_in_any_process(small):
    again = synth.generate(seed=3, n_train=2000, n_valid=300, n_test=200)
    assert again == small
    code = ("import sys; from seqkd import synth; from tests.test_synth import _digest; "
            "sys.stdout.write(_digest(synth.generate(seed=3, n_train=2000, n_valid=300, n_test=200)))")
    for hash_seed in ("0", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
        out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
        assert out == _digest(small)


def test_different_seed_different_corpus(small):
    other = synth.generate(seed=4, n_train=2000, n_valid=300, n_test=200)
    for split in ("train", "valid", "test"):
        assert len(set(other[split][0]) & set(small[split][0])) < 0.01 * len(small[split][0])


def test_split_sizes_and_clean_lines(small):
    assert {split: len(small[split][0]) for split in small} == {"train": 2000, "valid": 300, "test": 200}
    for src, tgt in small.values():
        assert len(src) == len(tgt)
        for line in src + tgt:
            assert line and line == line.strip() and "  " not in line
            assert not any(c in line for c in "\n\r\t")
    assert all(line.isascii() for line in small["train"][0])
    assert not all(line.isascii() for line in small["train"][1])  # umlauts and ß on the target side


def test_vocabulary_size(default):
    for side in (0, 1):
        counts = collections.Counter(w for line in default["train"][side] for w in line.split())
        assert len(counts) >= 2000
        # Zipf-like, as real text: the 200 most frequent types make up most of the tokens, and a long tail follows
        assert sum(c for _, c in counts.most_common(200)) > 0.6 * sum(counts.values())
        assert sum(c >= 10 for c in counts.values()) > 0.4 * len(counts)


def test_lengths(default):
    src, tgt = default["train"]
    src_lens = [len(line.split()) for line in src]
    tgt_lens = [len(line.split()) for line in tgt]
    assert min(src_lens) >= 5 and max(src_lens) <= 40
    assert 11 <= sum(src_lens) / len(src_lens) <= 16  # captions to news: Multi30k ~12, WMT ~20
    assert sum(n >= 30 for n in src_lens) > 0.02 * len(src_lens)  # a long right tail
    assert 0.9 <= sum(tgt_lens) / sum(src_lens) <= 1.2


def test_repeated_sources_have_different_references(default):
    refs = collections.defaultdict(set)
    occurrences = collections.Counter(default["train"][0])
    for src, tgt in zip(*default["train"]):
        refs[src].add(tgt)
    repeated = [src for src, n in occurrences.items() if n > 1]
    assert len(repeated) > 300  # a source seen again gets a fresh draw of its translation
    assert sum(len(refs[src]) > 1 for src in repeated) > 0.8 * len(repeated)


def test_valid_and_test_are_fresh(default):
    train = set(default["train"][0])
    for split in ("valid", "test"):
        src = default[split][0]
        assert sum(line in train for line in src) < 0.01 * len(src)
    assert len(set(default["valid"][0]) & set(default["test"][0])) < 10


def test_one_meaning_has_several_translations_with_a_clear_mode(lex):
    subj = NP(_noun(lex, "m"), definite=True)
    clause = Clause(subj, lex["transitive"][0], past=True, obj=NP(_noun(lex, "f"), plural=True, definite=False),
                    time=lex["time"][0])
    sentence = Sentence(clause, (("because", Clause(NP(pronoun="we"), lex["intransitive"][0], past=True)),))
    rng = random.Random(0)
    counts = collections.Counter(" ".join(synth.render_target(sentence, rng)) for _ in range(5000))
    (_, first), (_, second) = counts.most_common(2)
    assert len(counts) >= 10
    assert 1.2 * second < first < 0.5 * 5000
    participles = {t.participle() for t in clause.verb.tgt}
    perfect = sum(n for text, n in counts.items() if participles & set(text.split()))
    assert 0.55 * 5000 < perfect < 0.65 * 5000  # PERFECT_P = 0.6: perfect vs preterite for the past tense
    assert " ".join(synth.render_most_likely(sentence)) == counts.most_common(1)[0][0]  # the most frequent one


def test_most_likely_translations_keep_the_corpus_meanings(small):
    oracle = synth.generate(seed=3, n_train=2000, n_valid=300, n_test=200, most_likely=True)
    for split in ("train", "valid", "test"):
        assert oracle[split][0] == small[split][0]  # same sources: the drawn references still consume the stream
        same = sum(a == b for a, b in zip(oracle[split][1], small[split][1]))
        assert 0 < same < 0.5 * len(small[split][1])  # the mode is the likeliest, yet most references differ
    repeats = [t for s, t in zip(*oracle["train"]) if oracle["train"][0].count(s) > 1]
    assert repeats and all(repeats.count(t) > 1 for t in repeats)  # one source, one most likely translation


def _content_ids(lex: synth.Lexicon) -> tuple[dict, dict]:
    """Maps from every source and target surface form of a content lemma to the lemma's identity."""
    src, tgt = {}, {}
    for kind, entries in (("noun", lex["noun"]), ("verb", lex["transitive"] + lex["intransitive"]),
                          ("adjective", lex["adjective"]), ("time", lex["time"])):
        for entry in entries:
            src.update(dict.fromkeys(entry.src, id(entry)))
            for t in entry.tgt:
                if kind == "noun":
                    forms = [t.form(p, c) for p in (False, True) for c in ("nom", "dat")]
                elif kind == "verb":
                    forms = [t.finite(p, past, att) for p in ("1sg", "3sg", "1pl") for past in (False, True)
                             for att in (False, True)] + [t.participle()]
                else:
                    forms = [t + ending for ending in ("e", "en", "er", "es")] if kind == "adjective" else [t]
                tgt.update(dict.fromkeys(forms, id(entry)))
    return src, tgt


def test_target_is_reordered_not_monotone(small, lex):
    src_ids, tgt_ids = _content_ids(lex)
    same_words = reordered = 0
    for src, tgt in zip(*small["train"]):
        a = [src_ids[w] for w in src.split() if w in src_ids]
        b = [tgt_ids[w] for w in tgt.split() if w in tgt_ids]
        if sorted(a) == sorted(b):  # every content word translated once: compare the order
            same_words += 1
            reordered += a != b
    assert same_words > 0.9 * len(small["train"][0])
    assert reordered > 0.5 * same_words


def test_verb_moves_to_the_end_of_a_subordinate_clause(lex):
    verb = next(e for e in lex["transitive"] if len(e.tgt) == 1 and e.tgt[0].particle)  # a separable verb
    sub = Clause(NP(_noun(lex, "n")), verb, obj=NP(_noun(lex, "m")))
    sentence = Sentence(Clause(NP(pronoun="i"), lex["intransitive"][1]), (("because", sub),))
    src = synth.render_source(sentence)
    assert src.index(verb.src[1]) == src.index("because") + 3  # because the N V-s the N .
    tgt_verb, rng, verb_final = verb.tgt[0], random.Random(1), 0
    for _ in range(400):
        tgt = synth.render_target(sentence, rng)
        if "weil" in tgt:  # weil das N den N PARTICLE+V-t .
            assert tgt[-2] == tgt_verb.finite("3sg", False, attached=True)
            verb_final += 1
        else:  # denn das N V-t den N PARTICLE .
            assert tgt[tgt.index("denn") + 3] == tgt_verb.finite("3sg", False, attached=False)
            assert tgt[-2] == tgt_verb.particle
    assert 0.5 * 400 < verb_final < 0.7 * 400  # WEIL_P = 0.6


def test_determiners_and_adjectives_agree_with_the_target_gender(lex):
    nouns = {g: _noun(lex, g).tgt[0] for g in "mfn"}
    adjective = lex["adjective"][0].tgt[0]
    indefinite = {g: synth.decline(n, False, "nom", False, [adjective]) for g, n in nouns.items()}
    assert indefinite == {"m": ["ein", adjective + "er", nouns["m"].sg], "f": ["eine", adjective + "e", nouns["f"].sg],
                          "n": ["ein", adjective + "es", nouns["n"].sg]}
    assert [synth.decline(nouns[g], False, "acc", True)[0] for g in "mfn"] == ["den", "die", "das"]
    assert synth.decline(nouns["f"], True, "dat", True, [adjective]) == ["den", adjective + "en",
                                                                         nouns["f"].form(True, "dat")]
    # The source does not show the gender: the same source frame gets a different relative pronoun.
    for g, pronoun in zip("mfn", ("der", "die", "das")):
        head = NP(_noun(lex, g), relative=Clause(None, lex["intransitive"][2]))
        sentence = Sentence(Clause(head, lex["intransitive"][3]))
        assert synth.render_source(sentence)[2] == "that"
        assert synth.render_target(sentence, random.Random(0))[2:4] == [",", pronoun]
