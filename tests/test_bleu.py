import random

import pytest
import sacrebleu
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

from seqkd.bleu import _tokens, best_candidate, sentence_bleu, seq_inter_choices

WORDS = ["the", "The", "cat", "sat", "on", "mat", "a", "A", "dog", "ran", "to", "house", "big", "small", "it",
         "is", "was", "U.S.", "don't", "New", "York", "e-mail", "3.5", "1,000", "42", "2016", "x", "y"]
PUNCT = [".", ",", "!", "?", ";", ":", "-", "(", ")", '"', "'", "&amp;", "&quot;", "...", "%", "$"]


def _sentence(rng: random.Random, length: int) -> str:
    words = []
    for _ in range(length):
        r = rng.random()
        if r < 0.15:
            words.append(rng.choice(PUNCT))
        elif r < 0.25 and words:
            words.append(words[-1])  # a repeated word
        else:
            words.append(rng.choice(WORDS))
    # Glue some punctuation to its word, as detokenized text has it, and sometimes leave trailing spaces.
    text = ""
    for word in words:
        text += word if (text and word in PUNCT and rng.random() < 0.6) else (" " + word if text else word)
    return text + (" " if rng.random() < 0.1 else "")


def _length(rng: random.Random) -> int:
    r = rng.random()
    return 0 if r < 0.03 else rng.randint(1, 3) if r < 0.25 else rng.randint(40, 55) if r < 0.4 else rng.randint(4, 25)


def _near_copy(rng: random.Random, reference: str) -> str:
    tokens = reference.split()
    for _ in range(rng.randint(0, 3)):
        op = rng.random()
        if op < 0.4 and tokens:
            del tokens[rng.randrange(len(tokens))]
        elif op < 0.7:
            tokens.insert(rng.randint(0, len(tokens)), rng.choice(WORDS + PUNCT))
        elif tokens:
            tokens[rng.randrange(len(tokens))] = rng.choice(WORDS)
    return " ".join(tokens)


def _case(rng: random.Random) -> tuple[list[str], str]:
    reference = _sentence(rng, _length(rng))
    candidates = []
    for _ in range(rng.randint(1, 12)):
        r = rng.random()
        if r < 0.45:
            candidates.append(_near_copy(rng, reference))
        elif r < 0.55 and candidates:
            candidates.append(rng.choice(candidates))  # duplicate strings, as in detokenized n-best lists
        elif r < 0.6:
            candidates.append(reference)
        else:
            candidates.append(_sentence(rng, _length(rng)))
    return candidates, reference


def _sacre(hypothesis: str, reference: str) -> float:
    return sacrebleu.sentence_bleu(hypothesis, [reference]).score


def test_matches_sacrebleu_on_random_lists():
    rng = random.Random(2016)
    seen_high = 0
    for _ in range(1200):
        candidates, reference = _case(rng)
        expected = [_sacre(c, reference) for c in candidates]
        for candidate, score in zip(candidates, expected):
            assert sentence_bleu(candidate, reference) == pytest.approx(score, rel=0, abs=1e-9), (candidate, reference)
        want = max(range(len(candidates)), key=expected.__getitem__)  # first index of the maximum
        index, score = best_candidate(candidates, reference)
        assert index == want, (candidates, reference, expected)
        assert score == pytest.approx(expected[want], rel=0, abs=1e-9)
        seen_high += expected[want] > 50
    assert seen_high > 300  # the near copies do produce high scores


def test_word_by_word_tokenization_is_13a():
    # `_tokens` runs 13a word by word; it must equal sacrebleu's preprocessing of the whole line.
    rng = random.Random(13)
    alphabet = list("aZé中0 9.,-&;<>/:@[]`{~!?'\"$%()*+=^_|#\\") + [" ", " ", "\t", "\n", "\r", "\xa0", "\u2003",
                                                                  "\x1c", "-\n", "&amp;", "&quot;", "&lt;", "<skipped>"]
    tokenizer = Tokenizer13a()
    for _ in range(3000):
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 30)))
        assert _tokens(text) == tokenizer(text.rstrip()).split(), repr(text)
    for text in WORDS + PUNCT + [_sentence(rng, 30) for _ in range(200)]:
        assert _tokens(text) == tokenizer(text.rstrip()).split(), repr(text)


def test_edge_cases():
    # Identical text scores 100 (sacrebleu itself gives exp(log(100)) = 100.00000000000004, and so do we).
    for text in ["The cat sat on the mat.", "a", "x y"]:
        assert sentence_bleu(text, text) == _sacre(text, text) == pytest.approx(100.0, abs=1e-9)
    assert sentence_bleu("", "The cat sat on the mat.") == 0.0
    assert sentence_bleu("The cat", "") == 0.0
    assert sentence_bleu("", "") == 0.0
    assert sentence_bleu("dog house", "The cat sat on the mat.") == 0.0  # no matches at all
    for hyp, ref in [("the cat", "the cat sat on the mat"), ("mat the", "the cat sat on the mat"),
                     ("The cat sat on the mat", "the cat sat on the mat"), ("cat.", "cat ."),
                     ("an e-\nmail, 3.5 -\n4", "an email, 3.5 4"), ("tab\tand\xa0nbsp .", "tab and nbsp.")]:
        assert sentence_bleu(hyp, ref) == _sacre(hyp, ref)  # short, case, punctuation, odd whitespace


def test_ties_go_to_the_earlier_candidate():
    reference = "the cat sat on the mat"
    assert sentence_bleu("the cat sat", reference) == sentence_bleu("on the mat", reference) > 0
    assert best_candidate(["dog", "on the mat", "the cat sat", "on the mat"], reference)[0] == 1
    assert best_candidate(["dog", "x"], reference) == (0, 0.0)
    assert best_candidate(["", reference, reference], reference) == (1, _sacre(reference, reference))
    with pytest.raises(ValueError):
        best_candidate([], reference)


def test_workers_give_the_same_choices():
    rng = random.Random(7)
    cases = [_case(rng) for _ in range(300)]
    nbest, references = [c for c, _ in cases], [r for _, r in cases]
    serial = seq_inter_choices(nbest, references)
    assert seq_inter_choices(nbest, references, workers=2, chunk_size=16) == serial
    assert serial == [best_candidate(c, r) for c, r in cases]
