"""The vocabulary shortlist: what it holds, that a search on it only changes where a word falls outside it, and
the command that builds it and the option that uses it."""
import numpy as np
import pytest
import torch

from seqkd import shortlist
from seqkd.checkpoint import load_model
from seqkd.data import Side, load_split
from seqkd.inference import quantize
from seqkd.io import SeqkdError
from seqkd.prepare import load_vocabs
from seqkd.search import translate_ids
from tests.test_errors import one_line_error, seqkd


def side(sentences: list[list[int]]) -> Side:
    return Side(np.array(sum(sentences, []), dtype=np.uint16), np.cumsum([0] + [len(s) for s in sentences]))


class FakeVocab:
    def __init__(self, n: int, digest: str):
        self.n, self.digest = n, digest

    def __len__(self) -> int:
        return self.n


def test_a_source_piece_lists_the_target_pieces_that_come_with_it_strongest_first():
    # source 5 always comes with target 7, once with 8; target 6 is in every sentence (frequent, not specific)
    src = side([[5, 9], [5, 10], [5, 11], [9, 10]])  # uint16, as the data stage stores them
    tgt = side([[6, 7, 8], [6, 7], [6, 7], [6, 4]])
    built = shortlist.build(src, tgt, FakeVocab(12, "s"), FakeVocab(7000, "t"), frequent=5, per_source=2)  # 11 * 7000 > 2**16
    assert built.table.shape == (12, 2)
    assert built.table[5].tolist() == [7, 6]  # Dice: 7: 2*3/(3+3) = 1; 6: 2*3/(3+4) = 0.86; 8: 2*1/(3+1) = 0.5
    assert built.table[0].tolist() == [shortlist.EOS, shortlist.EOS]  # padding co-occurs with nothing
    assert built.frequent.tolist() == [0, 1, 2, 3, 6]  # the specials, then the most frequent piece
    words = built.for_batch(torch.tensor([[5, 0], [9, 10]]))
    assert words.tolist() == sorted(set([0, 1, 2, 3, 6, 7] + built.table[9].tolist() + built.table[10].tolist()))
    with pytest.raises(SeqkdError, match="built for another target vocabulary"):
        built.check("x.pt", FakeVocab(12, "s"), FakeVocab(10, "other"))


@pytest.mark.parametrize("int8", [False, True])
def test_a_shortlist_of_every_word_changes_nothing_and_a_short_one_only_picks_its_own_words(tiny_teacher, tiny_data,
                                                                                          int8):
    m, _, _, _ = load_model(tiny_teacher)
    if int8:
        m = quantize(m)
    src_vocab, tgt_vocab = load_vocabs(tiny_data)
    split = load_split(tiny_data, "train")
    sources = [split.src[i] for i in range(40)]
    full = translate_ids(m, sources, beam=3, batch_size=8)
    everything = shortlist.build(split.src, split.tgt, src_vocab, tgt_vocab, frequent=len(tgt_vocab))
    same = translate_ids(m, sources, beam=3, batch_size=8, shortlist=everything)
    assert [[h.tokens for h in s] for s in same] == [[h.tokens for h in s] for s in full]
    assert np.allclose([s[0].score for s in same], [s[0].score for s in full], atol=1e-5)
    short = shortlist.build(split.src, split.tgt, src_vocab, tgt_vocab, frequent=0, per_source=2)
    for source, hyps in zip(sources, translate_ids(m, sources, beam=3, batch_size=1, shortlist=short)):
        allowed = set(short.for_batch(torch.from_numpy(np.asarray(source, dtype=np.int64))[None]).tolist())
        assert set(hyps[0].tokens) <= allowed


def test_seqkd_shortlist_builds_a_file_that_translate_takes_and_checks(tiny_teacher, tiny_data, tmp_path):
    out = tmp_path / "shortlist.pt"
    proc = seqkd("shortlist", "--data_dir", str(tiny_data), "--out", str(out), "--frequent", "10000")
    assert proc.returncode == 0 and out.exists(), proc.stderr.decode()
    text = b"the cat sees a dog\nred house\n"
    plain = seqkd("translate", "--checkpoint", str(tiny_teacher), "--threads", "1", stdin=text)
    short = seqkd("translate", "--checkpoint", str(tiny_teacher), "--threads", "1", "--shortlist", str(out),
                  stdin=text)
    assert short.returncode == 0 and short.stdout == plain.stdout and len(plain.stdout.splitlines()) == 2
    one_line_error(seqkd("translate", "--checkpoint", str(tiny_teacher), "--shortlist", str(tiny_teacher),
                         stdin=text), f"--shortlist {tiny_teacher}: not a shortlist")
    one_line_error(seqkd("translate", "--checkpoint", str(tiny_teacher), "--shortlist", str(tmp_path / "none.pt"),
                         stdin=text), "none.pt: file not found")
    other = tmp_path / "other.pt"
    built = shortlist.load(out)
    shortlist.save(other, shortlist.Shortlist(built.frequent, built.table, "abc", built.tgt_digest), {})
    one_line_error(seqkd("translate", "--checkpoint", str(tiny_teacher), "--shortlist", str(other), stdin=text),
                   "built for another source vocabulary")
    one_line_error(seqkd("shortlist", "--data_dir", str(tmp_path), "--out", str(tmp_path / "x.pt")),
                   "no finished data stage")
