import re

from pipeline.bench_paper_speed import main


def test_the_paper_speed_table_gives_words_per_second_and_the_ratios(tiny_data, tiny_teacher, capsys):
    assert main(["--teacher", str(tiny_teacher), "--student", str(tiny_teacher), "--data_dir", str(tiny_data),
                 "--passes", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    rows = re.findall(r"^(teacher|student) .* (fp32|int8) (beam 5|greedy): [\d.]+ sentences/s, (\d+) words/s, "
                      r"output ([\d.]+) of the references' words, BLEU ([\d.]+)$", out, re.M)
    assert [(r[0], r[1], r[2]) for r in rows] == [("teacher", "fp32", "beam 5"), ("teacher", "int8", "beam 5"),
                                                  ("student", "fp32", "greedy"), ("student", "int8", "greedy")]
    assert all(int(r[3]) > 0 and float(r[4]) > 0 for r in rows)
    assert re.search(r"^fp32: student greedy / teacher beam 5 = [\d.]+x words/s$", out, re.M)


def test_a_missing_checkpoint_is_one_clear_error(tiny_data, tmp_path, capsys):
    assert main(["--teacher", str(tmp_path / "nope.pt"), "--student", str(tmp_path / "nope.pt"),
                 "--data_dir", str(tiny_data)]) == 2
    assert "nope.pt" in capsys.readouterr().err
