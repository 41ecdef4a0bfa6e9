"""The default corpus: a synthetic English-like to German-like language pair with controlled ambiguity.

Both are "Jabberwocky" languages: real function words (the, weil, der/die/das) around invented content words. The
source is a deterministic rendering of a sampled meaning; the target renders it with German-like grammar (V2,
verb-final subordinate and relative clauses, final participles and particles, gender/number/case agreement) and
draws free choices (synonyms, optional words, word order, clause constructions) anew for every occurrence, each with
a clear mode. References are then a mixture while a teacher's beam output sits near the mode: the situation in which
sequence-level knowledge distillation helps. The lexicon comes from the fixed LEXICON_SEED, so corpora with different
seeds are samples of one language pair. data/README.md documents the grammar and measured statistics.
"""
from __future__ import annotations

import functools
import hashlib
import itertools
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

SRC_LANG = "en"
TGT_LANG = "de"
LEXICON_SEED = 2016

# Lexicon size and shape. Lemma frequencies follow 1 / (rank + ZIPF_OFFSET): Zipf-like, but the offset flattens the
# head so that even the rarest lemmas of a class are seen dozens of times in 30k sentences.
N_NOUNS, N_TRANSITIVE, N_INTRANSITIVE, N_ADJECTIVES, N_TIMES = 700, 130, 90, 300, 40
ZIPF_OFFSET = 2
SYNONYM_SHARE = 1 / 3  # share of content lemmas with several target synonyms; half of them have 2, half 3
SYNONYM_PROBS = {2: (0.7, 0.3), 3: (0.65, 0.25, 0.10)}
COGNATE_P = 0.7  # share of lemmas whose most likely translation is a cognate (see _SOUND_SHIFT); others are unrelated

# Meaning sampling: these shape the source sentences (and their lengths).
PRONOUN_SUBJECT_P = 0.2
PLURAL_P, DEFINITE_P = 0.3, 0.6
ADJECTIVE_COUNT_WEIGHTS = (0.6, 0.3, 0.1)  # 0, 1 or 2 adjectives
NOUN_WITH_P, RELATIVE_P = 0.08, 0.10  # "the man with the hat", "the man that sees the dog" (top-level NPs only)
TRANSITIVE_P, CLAUSE_WITH_P, PLACE_P, TIME_P, PAST_P = 0.65, 0.15, 0.3, 0.3, 0.5
EXTRA_CLAUSE_WEIGHTS = (0.62, 0.28, 0.10)  # 0, 1 or 2 clauses linked to the main clause
LINK_WEIGHTS = {"and": 25, "but": 10, "because": 20, "when": 15, "if": 10, "although": 7, "while": 6,
                "after": 4, "before": 3}
MIN_LEN, MAX_LEN = 5, 40  # source tokens, the final full stop included
REPEAT_P = 0.05  # share of training pairs that reuse an earlier training source with a fresh translation

# Target-side free choices, drawn per sentence occurrence (the multi-modality).
PERFECT_P = 0.6  # past tense: "hat ... gesehen" (aux in 2nd position, participle final) vs preterite "sah"
WEIL_P = 0.6  # "because": "weil" + verb-final clause vs "denn" + V2 main-clause order
FRONT_TIME_P = 0.3  # time adverbial fronted (subject moves behind the verb) vs in the middle field
FRONT_PLACE_P = 0.15  # place PP fronted, when the time adverbial was not
PARTICLE_P = 0.25  # optional modal particle "doch" in main clauses
EINIGE_P = 0.3  # optional "einige" before indefinite plurals
FUNCTION_SYNONYMS = {"near": (("neben", "bei"), (0.65, 0.35)), "if": (("wenn", "falls"), (0.65, 0.35))}

_PREPOSITIONS = {"in": "in", "on": "auf", "near": "neben", "under": "unter", "behind": "hinter", "at": "an"}
_SUBORDINATORS = {"although": "obwohl", "if": "wenn", "while": "während", "after": "nachdem", "before": "bevor"}
_PRONOUNS = {"i": ("ich", "1sg"), "he": ("er", "3sg"), "she": ("sie", "3sg"), "we": ("wir", "1pl"),
             "they": ("sie", "3pl")}
_SRC_PRONOUNS = tuple(_PRONOUNS)
_PLACE_PREPOSITIONS = tuple(_PREPOSITIONS)
_LINKS, _LINK_WEIGHTS = tuple(LINK_WEIGHTS), tuple(LINK_WEIGHTS.values())

# Agreement tables, indexed by case and then by class: masculine, feminine, neuter, plural.
_AGR = {"m": 0, "f": 1, "n": 2, "p": 3}
_DEFINITE = {"nom": ("der", "die", "das", "die"), "acc": ("den", "die", "das", "die"),
             "dat": ("dem", "der", "dem", "den")}
_INDEFINITE = {"nom": ("ein", "eine", "ein"), "acc": ("einen", "eine", "ein"), "dat": ("einem", "einer", "einem")}
_WEAK = {"nom": ("e", "e", "e", "en"), "acc": ("en", "e", "e", "en"), "dat": ("en", "en", "en", "en")}
_MIXED = {"nom": ("er", "e", "es"), "acc": ("en", "e", "es"), "dat": ("en", "en", "en")}
_STRONG_PLURAL = {"nom": "e", "acc": "e", "dat": "en"}
_PRESENT = {"1sg": "e", "3sg": "t", "1pl": "en", "3pl": "en"}
_PRETERITE = {"1sg": "te", "3sg": "te", "1pl": "ten", "3pl": "ten"}
_AUX = {"haben": {"1sg": "habe", "3sg": "hat", "1pl": "haben", "3pl": "haben"},
        "sein": {"1sg": "bin", "3sg": "ist", "1pl": "sind", "3pl": "sind"}}
_PARTICLES = ("an", "auf", "aus", "ein", "ab", "vor", "weg", "zurück")
_INSEPARABLE = ("be", "ver", "er", "ent")
_UMLAUT = {"a": "ä", "o": "ö", "u": "ü"}

# Syllable inventories (onset, vowel, coda), repeated entries make them more frequent.
_SRC_SYLLABLES = (
    ("b d f g h k l m n p r s t v w br bl cr dr fl gr pl pr sl st tr sn sp ch sh th b d k m p t".split()),
    "a e i o u a e i o ea oo ai ou".split(),
    ["", "", "", "n", "m", "t", "d", "k", "l", "r", "nd", "ng", "mp", "rt", "ck", "lt"])
_TGT_SYLLABLES = (
    "b d f g h k l m n p r s t w z sch schl schw kr gr br st sp pf fl b d g k m n t".split(),
    "a e i o u a e i o u ei au ie ä ö ü eu".split(),
    ["", "", "", "n", "m", "l", "r", "ch", "ck", "ft", "nd", "ng", "rt", "lt", "ß", "tz", "rn"])
# Cognates: a target stem derived from a source word syllable by syllable by a few regular sound changes, as in
# English/German pairs (th -> d: thing/Ding; sh -> sch: ship/Schiff; v -> w, ea -> ie, ou -> au: house/Haus).
# They make much of the lexicon learnable from spelling, as real cognates (house/Haus, water/Wasser) are, while
# synonyms and the other 30% of lemmas must be learned word by word.
_SOUND_SHIFT = (
    {"b": "b", "d": "d", "f": "f", "g": "g", "h": "h", "k": "k", "l": "l", "m": "m", "n": "n", "p": "p", "r": "r",
     "s": "s", "t": "t", "v": "w", "w": "w", "br": "br", "bl": "bl", "cr": "kr", "dr": "dr", "fl": "fl", "gr": "gr",
     "pl": "pl", "pr": "pr", "sl": "schl", "st": "st", "tr": "tr", "sn": "schn", "sp": "sp", "ch": "ch",
     "sh": "sch", "th": "d"},
    {"a": "a", "e": "e", "i": "i", "o": "o", "u": "u", "ea": "ie", "oo": "u", "ai": "ei", "ou": "au"},
    {"": "", "n": "n", "m": "m", "t": "t", "d": "d", "k": "k", "l": "l", "r": "r", "nd": "nd", "ng": "ng",
     "mp": "mpf", "rt": "rt", "ck": "ck", "lt": "lt"})
_FUNCTION_WORDS = ("the a with that and but because when although if while after before i he she we they in on "
                   "near under behind at der die das den dem ein eine einen einem einer einige einigen mit und aber "
                   "weil denn als wenn falls obwohl während nachdem bevor ich er sie wir doch auf neben bei unter "
                   "hinter an habe hat haben bin ist sind aus ab vor weg zurück").split()


@dataclass(frozen=True)
class TgtNoun:
    """A target noun; its gender is a lexical property that the source does not show."""
    sg: str
    pl: str
    gender: str  # "m", "f" or "n"

    def form(self, plural: bool, case: str) -> str:
        """The surface form: the dative plural adds -n unless the plural already ends in -n or -s."""
        if not plural:
            return self.sg
        return self.pl + "n" if case == "dat" and self.pl[-1] not in "ns" else self.pl


@dataclass(frozen=True)
class TgtVerb:
    """A weak target verb, optionally with a separable particle that verb-second order strands at the clause end."""
    stem: str
    particle: str  # "" for most verbs
    inseparable: bool  # be-/ver-/er-/ent- verbs form their participle without ge-
    aux: str  # perfect auxiliary: "haben" or "sein"

    def finite(self, person: str, past: bool, attached: bool) -> str:
        """Finite form; `attached` joins the particle to the verb, as in verb-final clauses."""
        word = self._suffix((_PRETERITE if past else _PRESENT)[person])
        return self.particle + word if attached else word

    def participle(self) -> str:
        """Past participle: ge-kauf-t, an-ge-ruf-t, ver-kauf-t."""
        return self.particle + ("" if self.inseparable else "ge") + self._suffix("t")

    def _suffix(self, ending: str) -> str:
        """Stem + ending, with e inserted between a stem in -t/-d and a t-ending (wartet, not wartt)."""
        return self.stem + ("e" if self.stem[-1] in "td" and ending.startswith("t") else "") + ending


@dataclass(frozen=True)
class Entry:
    """A source lemma: its source forms and its target synonyms with cumulative probabilities."""
    src: tuple[str, ...]  # noun: (sg, pl); verb: (base, 3sg, past); adjective, time adverb: (word,)
    tgt: tuple[Any, ...]  # TgtNoun, TgtVerb, or str (adjective stem, time adverb)
    cum: tuple[float, ...]


# The lexicon: content lemmas by class ("noun", "transitive", "intransitive", "adjective", "time"), most frequent first.
Lexicon = dict[str, tuple[Entry, ...]]


@dataclass(frozen=True)
class NP:
    """A noun phrase meaning: a subject pronoun, or a noun with its modifiers."""
    noun: Entry | None = None
    pronoun: str | None = None  # a key of _PRONOUNS
    plural: bool = False
    definite: bool = True
    adjectives: tuple[Entry, ...] = ()
    with_np: NP | None = None
    relative: Clause | None = None  # a subject relative clause (its subj is None)


@dataclass(frozen=True)
class Clause:
    """A clause meaning: subject, verb, tense, and optional object, with-PP, place PP and time adverb."""
    subj: NP | None
    verb: Entry
    past: bool = False
    obj: NP | None = None
    with_np: NP | None = None
    place: tuple[str, NP] | None = None  # (source preposition, NP)
    time: Entry | None = None


@dataclass(frozen=True)
class Sentence:
    """A main clause and the clauses linked after it by a source conjunction ("and", "because", ...)."""
    main: Clause
    links: tuple[tuple[str, Clause], ...] = ()


def _umlaut(word: str) -> str:
    """Umlaut the last a/o/u as German plurals do (au -> äu; a word whose last one is in eu stays unchanged)."""
    for i in range(len(word) - 1, -1, -1):
        if word[i] == "u" and word[i - 1:i] in ("a", "e"):
            return word[:i - 1] + "äu" + word[i + 1:] if word[i - 1] == "a" else word
        if word[i] in _UMLAUT:
            return word[:i] + _UMLAUT[word[i]] + word[i + 1:]
    return word


class _Inventor:
    """Invents pronounceable words for one language, never reusing a surface form of another lemma."""

    def __init__(self, rng: random.Random, syllables: tuple[list[str], list[str], list[str]]):
        self.rng, self.syllables = rng, syllables
        self.used = set(_FUNCTION_WORDS)  # only for membership tests: never iterated, so hash order cannot leak

    def word(self, counts: tuple[float, float, float]) -> str:
        """A word of 1, 2 or 3 (onset, vowel, coda) syllables with the given probabilities."""
        return "".join("".join(syl) for syl in self.syllabified(counts))

    def syllabified(self, counts: tuple[float, float, float]) -> list[tuple[str, str, str]]:
        onsets, vowels, codas = self.syllables
        n = self.rng.choices((1, 2, 3), counts)[0]
        return [(self.rng.choice(onsets), self.rng.choice(vowels), self.rng.choice(codas)) for _ in range(n)]

    def claim(self, make: Callable[[], tuple[Any, list[str]]]) -> Any:
        """Call make() until none of the surface forms of the lemma it returns is taken; reserve them."""
        while True:
            lemma, forms = make()
            if not any(f in self.used for f in forms):
                self.used.update(forms)
                return lemma


def _src_lemma(inv: _Inventor, kind: str) -> tuple[tuple[tuple[str, ...], str], list[str]]:
    """Source forms (nouns sg/pl (-s), verbs base/3sg (-s)/past (-ed), other classes one form) and the word's
    cognate stem on the target side."""
    syllables = inv.syllabified((0.35, 0.5, 0.15))
    w = "".join("".join(syl) for syl in syllables)
    forms = {"noun": [w, w + "s"], "verb": [w, w + "s", w + ("d" if w.endswith("e") else "ed")]}.get(kind, [w])
    cognate = "".join(_SOUND_SHIFT[0][o] + _SOUND_SHIFT[1][v] + _SOUND_SHIFT[2][c] for o, v, c in syllables)
    return (tuple(forms), cognate), forms


def _tgt_noun(inv: _Inventor, stem: str | None = None) -> tuple[TgtNoun, list[str]]:
    """A target noun whose plural class follows its gender and ending, as German plurals mostly do."""
    rng, stem = inv.rng, stem or inv.word((0.45, 0.5, 0.05))
    gender = rng.choices("mfn", (0.4, 0.35, 0.25))[0]
    # Some endings signal the gender (feminine -e, neuter -chen, masculine -er): partly predictable, as in German.
    suffix, p = {"f": ("e", 0.5), "n": ("chen", 0.2), "m": ("er", 0.25)}[gender]
    sg = stem + suffix if rng.random() < p else stem
    if sg.endswith(("chen", "er")):
        pl = sg
    elif gender == "f":
        pl = sg + ("n" if sg.endswith("e") else "en")
    elif rng.random() < 0.1:
        pl = sg + "s"
    elif gender == "n" and rng.random() < 0.5:
        pl = _umlaut(sg) + "er"
    else:
        pl = (_umlaut(sg) if rng.random() < 0.3 else sg) + "e"
    noun = TgtNoun(sg, pl, gender)
    return noun, list(dict.fromkeys([sg, pl, noun.form(True, "dat")]))


def _tgt_verb(inv: _Inventor, transitive: bool, stem: str | None = None) -> tuple[TgtVerb, list[str]]:
    """A target verb: 15% inseparable prefix, 25% separable particle; a third of intransitives take "sein"."""
    rng, stem, r = inv.rng, stem or inv.word((0.45, 0.5, 0.05)), inv.rng.random()
    verb = TgtVerb(rng.choice(_INSEPARABLE) + stem if r < 0.15 else stem,
                   rng.choice(_PARTICLES) if 0.15 <= r < 0.4 else "", r < 0.15,
                   "haben" if transitive or rng.random() < 2 / 3 else "sein")
    forms = [verb.finite(p, past, att) for p in _PRESENT for past in (False, True) for att in (False, True)]
    return verb, list(dict.fromkeys(forms + [verb.participle()]))


@functools.lru_cache(maxsize=2)
def fingerprint() -> str:
    """A short hash of this module's source: the identity of the generator, for caches of generated corpora."""
    return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:10]


def build_lexicon(seed: int = LEXICON_SEED) -> Lexicon:
    """The lexicon: invented source lemmas, each with 1-3 invented target synonyms (cached: treat it as read-only)."""
    rng = random.Random(seed)
    src, tgt = _Inventor(rng, _SRC_SYLLABLES), _Inventor(rng, _TGT_SYLLABLES)

    def adjective(stem: str | None = None) -> tuple[str, list[str]]:  # the stem; only its inflected forms occur
        stem = stem or tgt.word((0.45, 0.5, 0.05))
        return stem, [stem + ending for ending in ("e", "en", "er", "es")]

    def time_adverb(stem: str | None = None) -> tuple[str, list[str]]:
        word = stem or tgt.word((0, 0.8, 0.2))
        return word, [word]

    def entries(n: int, kind: str, make_tgt: Callable[..., tuple[Any, list[str]]]) -> tuple[Entry, ...]:
        out = []
        for _ in range(n):
            forms, cognate = src.claim(lambda: _src_lemma(src, kind))
            k = (2 if rng.random() < 0.5 else 3) if rng.random() < SYNONYM_SHARE else 1
            first = None
            if rng.random() < COGNATE_P:  # the most likely translation is a cognate, unless its forms are taken
                lemma, tgt_forms = make_tgt(cognate)
                if not any(f in tgt.used for f in tgt_forms):
                    tgt.used.update(tgt_forms)
                    first = lemma
            synonyms = ((first,) if first else ()) + tuple(tgt.claim(make_tgt) for _ in range(k - bool(first)))
            out.append(Entry(forms, synonyms, tuple(itertools.accumulate(SYNONYM_PROBS.get(k, (1.0,))))))
        return tuple(out)

    return {"noun": entries(N_NOUNS, "noun", lambda stem=None: _tgt_noun(tgt, stem)),
            "transitive": entries(N_TRANSITIVE, "verb", lambda stem=None: _tgt_verb(tgt, True, stem)),
            "intransitive": entries(N_INTRANSITIVE, "verb", lambda stem=None: _tgt_verb(tgt, False, stem)),
            "adjective": entries(N_ADJECTIVES, "adjective", adjective), "time": entries(N_TIMES, "time", time_adverb)}


def decline(noun: TgtNoun, plural: bool, case: str, definite: bool, adjectives: Sequence[str] = (),
            some: bool = False) -> list[str]:
    """Determiner, adjectives and noun agreeing in gender, number and case (German article declension).

    Definite articles take weak adjective endings, "ein" mixed ones, bare or "einige" plurals strong ones.
    """
    agr = _AGR["p" if plural else noun.gender]
    if definite:
        det, ending = [_DEFINITE[case][agr]], _WEAK[case][agr]
    elif not plural:
        det, ending = [_INDEFINITE[case][agr]], _MIXED[case][agr]
    else:
        det, ending = (["einigen" if case == "dat" else "einige"] if some else []), _STRONG_PLURAL[case]
    return det + [a + ending for a in adjectives] + [noun.form(plural, case)]


def _person(np: NP) -> str:
    """Person and number of a subject: "1sg", "3sg", "1pl" or "3pl" (the source marks only "3sg", with -s)."""
    return _PRONOUNS[np.pronoun][1] if np.pronoun is not None else "3pl" if np.plural else "3sg"


def _src_np(np: NP) -> list[str]:
    """Fixed English order: determiner, adjectives, noun, with-PP, relative clause."""
    if np.pronoun is not None:
        return [np.pronoun]
    words = ["the"] if np.definite else ([] if np.plural else ["a"])
    words += [a.src[0] for a in np.adjectives] + [np.noun.src[np.plural]]
    if np.with_np:
        words += ["with"] + _src_np(np.with_np)
    if np.relative:
        words += ["that"] + _src_clause(np.relative, _person(np))
    return words


def _src_clause(c: Clause, person: str | None = None) -> list[str]:
    """Fixed English order: subject (none in relative clauses), verb, object, with-PP, place PP, time adverb."""
    words = [] if c.subj is None else _src_np(c.subj)
    person = person or _person(c.subj)
    words.append(c.verb.src[2 if c.past else (1 if person == "3sg" else 0)])
    if c.obj:
        words += _src_np(c.obj)
    if c.with_np:
        words += ["with"] + _src_np(c.with_np)
    if c.place:
        words += [c.place[0]] + _src_np(c.place[1])
    if c.time:
        words.append(c.time.src[0])
    return words


def render_source(s: Sentence) -> list[str]:
    """The source sentence: a deterministic function of the meaning."""
    words = _src_clause(s.main)
    for conj, clause in s.links:
        words += [conj] + _src_clause(clause)
    return words + ["."]


def _tidy(words: list[str]) -> list[str]:
    """Drop a comma that closes a clause right before another comma or the full stop."""
    return [w for w, nxt in zip(words, words[1:] + [""]) if not (w == "," and nxt in (",", "."))]


class _Target:
    """Renders one sentence meaning in the target language, drawing each free choice from `rng`."""

    def __init__(self, rng: random.Random):
        self.rng = rng

    def pick(self, entry: Entry) -> Any:
        """One of the lemma's target synonyms, by their probabilities."""
        return entry.tgt[0] if len(entry.tgt) == 1 else self.rng.choices(entry.tgt, cum_weights=entry.cum)[0]

    def function_word(self, src: str, table: dict[str, str]) -> str:
        """The translation of a preposition or conjunction, drawn when it has synonyms."""
        if src in FUNCTION_SYNONYMS:
            words, probs = FUNCTION_SYNONYMS[src]
            return self.rng.choices(words, probs)[0]
        return table[src]

    def np(self, np: NP, case: str) -> list[str]:
        """A noun phrase in `case`, with its with-PP and relative clause."""
        if np.pronoun is not None:  # pronouns occur only as subjects, hence nominative
            return [_PRONOUNS[np.pronoun][0]]
        noun = self.pick(np.noun)
        some = np.plural and not np.definite and self.rng.random() < EINIGE_P
        words = decline(noun, np.plural, case, np.definite, [self.pick(a) for a in np.adjectives], some)
        if np.with_np:
            words += ["mit"] + self.np(np.with_np, "dat")
        if np.relative:  # the relative pronoun agrees with the head noun's gender and number
            pronoun = _DEFINITE["nom"][_AGR["p" if np.plural else noun.gender]]
            words += [","] + self.verb_final([pronoun], np.relative, _person(np)) + [","]
        return words

    def pieces(self, c: Clause) -> tuple[TgtVerb, bool, list[str], list[str], list[str]]:
        """The verb, whether a past tense becomes a perfect, and the time, object (+ with-PP) and place chunks."""
        verb = self.pick(c.verb)
        perfect = c.past and self.rng.random() < PERFECT_P
        time = [self.pick(c.time)] if c.time else []
        objects = (self.np(c.obj, "acc") if c.obj else []) + (["mit"] + self.np(c.with_np, "dat") if c.with_np else [])
        place = [self.function_word(c.place[0], _PREPOSITIONS)] + self.np(c.place[1], "dat") if c.place else []
        return verb, perfect, time, objects, place

    def verb_second(self, c: Clause) -> list[str]:
        """Main-clause order: one chunk, the finite verb, the middle field, then particle or participle."""
        subj, person = self.np(c.subj, "nom"), _person(c.subj)
        verb, perfect, time, objects, place = self.pieces(c)
        finite = _AUX[verb.aux][person] if perfect else verb.finite(person, c.past, attached=False)
        final = [verb.participle()] if perfect else [verb.particle] * bool(verb.particle)
        doch = ["doch"] if self.rng.random() < PARTICLE_P else []
        if time and self.rng.random() < FRONT_TIME_P:
            front, time = time, []
        elif place and self.rng.random() < FRONT_PLACE_P:
            front, place = place, []
        else:
            front, subj = subj, []
        return front + [finite] + subj + time + doch + objects + place + final

    def verb_final(self, lead: list[str], c: Clause, person: str) -> list[str]:
        """Subordinate/relative order: `lead` (conjunction + subject, or relative pronoun), ..., verb cluster last."""
        verb, perfect, time, objects, place = self.pieces(c)
        cluster = [verb.participle(), _AUX[verb.aux][person]] if perfect else [verb.finite(person, c.past, True)]
        return lead + time + objects + place + cluster

    def sentence(self, s: Sentence) -> list[str]:
        """The main clause in V2 order, then each linked clause in the order its conjunction demands."""
        words = self.verb_second(s.main)
        for conj, c in s.links:
            if conj == "and":
                words += ["und"] + self.verb_second(c)
            elif conj == "but":
                words += [",", "aber"] + self.verb_second(c)
            elif conj == "because" and self.rng.random() >= WEIL_P:
                words += [",", "denn"] + self.verb_second(c)
            else:
                sub = {"because": "weil", "when": "als" if c.past else "wenn"}.get(conj) or self.function_word(
                    conj, _SUBORDINATORS)
                words += [",", sub] + self.verb_final(self.np(c.subj, "nom"), c, _person(c.subj)) + [","]
        return _tidy(words + ["."])


def render_target(s: Sentence, rng: random.Random) -> list[str]:
    """One translation of the meaning `s`; every free choice is drawn from `rng`."""
    return _Target(rng).sentence(s)


class _Midpoint(random.Random):
    """A random source whose every draw is 0.5 (see render_most_likely)."""

    def random(self) -> float:
        return 0.5


def render_most_likely(s: Sentence) -> list[str]:
    """The most likely translation of `s`: the most likely alternative of every free choice. Every choice is drawn
    as `rng.random() < p` or by cumulative weights whose first alternative has a probability above 0.5 (the tables
    at the top), so a draw of 0.5 takes the likelier side of each one."""
    return _Target(_Midpoint()).sentence(s)


def _zipf_cum(n: int) -> list[float]:
    """Cumulative weights 1 / (rank + ZIPF_OFFSET) for ranks 1..n."""
    return list(itertools.accumulate(1.0 / (rank + ZIPF_OFFSET) for rank in range(1, n + 1)))


class _Sampler:
    """Samples sentence meanings: the only randomness the source language has."""

    def __init__(self, lex: Lexicon, rng: random.Random):
        self.rng = rng
        self.classes = {name: (entries, _zipf_cum(len(entries))) for name, entries in lex.items()}

    def draw(self, name: str) -> Entry:
        """A lemma of class `name`, with Zipf-like frequencies."""
        entries, cum = self.classes[name]
        return self.rng.choices(entries, cum_weights=cum)[0]

    def np(self, top: bool) -> NP:
        """A noun phrase; only `top` ones (subjects and objects of main clauses) get a with-PP or relative clause."""
        rng = self.rng
        noun = self.draw("noun")
        plural, definite = rng.random() < PLURAL_P, rng.random() < DEFINITE_P
        n_adjectives = rng.choices((0, 1, 2), ADJECTIVE_COUNT_WEIGHTS)[0]
        adjectives = tuple(dict.fromkeys(self.draw("adjective") for _ in range(n_adjectives)))  # no "big big house"
        with_np = self.np(False) if top and rng.random() < NOUN_WITH_P else None
        relative = self.clause(relative=True) if top and rng.random() < RELATIVE_P else None
        return NP(noun, None, plural, definite, adjectives, with_np, relative)

    def clause(self, relative: bool = False) -> Clause:
        """A clause; relative clauses have no subject of their own and only an optional object."""
        rng = self.rng
        if relative:
            subj = None
        elif rng.random() < PRONOUN_SUBJECT_P:
            subj = NP(pronoun=rng.choice(_SRC_PRONOUNS))
        else:
            subj = self.np(True)
        transitive, past = rng.random() < TRANSITIVE_P, rng.random() < PAST_P
        verb = self.draw("transitive" if transitive else "intransitive")
        obj = self.np(not relative) if transitive else None
        if relative:
            return Clause(None, verb, past, obj)
        with_np = self.np(False) if rng.random() < CLAUSE_WITH_P else None
        place = (rng.choice(_PLACE_PREPOSITIONS), self.np(False)) if rng.random() < PLACE_P else None
        time = self.draw("time") if rng.random() < TIME_P else None
        return Clause(subj, verb, past, obj, with_np, place, time)

    def sentence(self) -> Sentence:
        """A main clause with 0-2 linked clauses, resampled until the source has MIN_LEN..MAX_LEN tokens."""
        rng = self.rng
        while True:
            main, n_links = self.clause(), rng.choices((0, 1, 2), EXTRA_CLAUSE_WEIGHTS)[0]
            s = Sentence(main, tuple((rng.choices(_LINKS, _LINK_WEIGHTS)[0], self.clause()) for _ in range(n_links)))
            if MIN_LEN <= len(render_source(s)) <= MAX_LEN:
                return s


def generate(seed: int = 1, n_train: int = 30000, n_valid: int = 1000, n_test: int = 1000,
             most_likely: bool = False) -> dict[str, tuple[list[str], list[str]]]:
    """Returns {"train": (src_lines, tgt_lines), "valid": (...), "test": (...)}; each line one sentence, words
    separated by single spaces, no newline characters, no empty lines.

    About REPEAT_P of the training pairs reuse the meaning (hence the source) of an earlier training pair with a
    freshly drawn translation; valid and test are fresh samples. With `most_likely`, the target lines are the most
    likely translations of the same meanings instead of the drawn references (the oracle of a deterministic model).
    """
    lex = build_lexicon()
    corpus = {}
    for index, (split, n) in enumerate((("train", n_train), ("valid", n_valid), ("test", n_test))):
        rng = random.Random(3 * seed + index)  # one stream per split (so valid/test do not depend on n_train)
        sampler, meanings, src, tgt = _Sampler(lex, rng), [], [], []
        for _ in range(n):
            if split == "train" and meanings and rng.random() < REPEAT_P:
                s = rng.choice(meanings)
            else:
                s = sampler.sentence()
            meanings.append(s)
            src.append(" ".join(render_source(s)))
            drawn = render_target(s, rng)  # drawn in any case: the stream, hence the meanings, stay the corpus's
            tgt.append(" ".join(render_most_likely(s) if most_likely else drawn))
        corpus[split] = (src, tgt)
    return corpus
