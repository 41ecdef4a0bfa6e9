"""pipeline.synth_oracle: the default corpus's most likely translations as a yardstick for a run's outputs."""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from pipeline import synth_oracle


def test_oracle_scores_files_against_references_and_most_likely(tiny_run: Path, tmp_path: Path, capsys):
    data = tiny_run / "data"
    refs = (data / "valid.de").read_text(encoding="utf-8")
    (tmp_path / "refs.txt").write_text(refs, encoding="utf-8")
    assert synth_oracle.main(["--data_dir", str(data), "--output", str(tmp_path / "oracle.txt"),
                              str(tmp_path / "refs.txt"), str(tmp_path / "oracle.txt")]) == 0
    out = capsys.readouterr().out.splitlines()
    oracle_bleu = float(re.search(r"references: BLEU ([\d.]+)", out[0]).group(1))
    assert 30 < oracle_bleu < 95  # the choices are drawn: no deterministic output matches every reference
    assert "refs.txt: BLEU 100.00 against the references" in out[1]
    assert "oracle.txt: BLEU" in out[2] and "100.00 against the most likely translations (100.0% identical)" in out[2]


def test_oracle_refuses_other_corpora_and_short_files(tiny_run: Path, tiny_data: Path, tmp_path: Path, capsys):
    assert synth_oracle.main(["--data_dir", str(tiny_data)]) == 2
    assert "corpus 'text'; the oracle exists only for the synthetic default corpus" in capsys.readouterr().err
    (tmp_path / "short.txt").write_text("eins\n", encoding="utf-8")
    assert synth_oracle.main(["--data_dir", str(tiny_run / "data"), str(tmp_path / "short.txt")]) == 2
    assert "short.txt: 1 lines, the valid split has 60" in capsys.readouterr().err
    assert synth_oracle.main(["--data_dir", str(tmp_path)]) == 2
    assert "no finished data stage there" in capsys.readouterr().err
    other = tmp_path / "other"  # the same run's data with one reference changed: not this generator's corpus
    shutil.copytree(tiny_run / "data", other)
    lines = (other / "valid.de").read_text(encoding="utf-8").splitlines()
    (other / "valid.de").write_text("\n".join(["ein anderer satz ."] + lines[1:]) + "\n", encoding="utf-8")
    assert synth_oracle.main(["--data_dir", str(other)]) == 2
    assert "valid.de: not the references this generator makes for seed 1" in capsys.readouterr().err
