"""make bench-decode's tables from its measured rows (the measuring itself needs the peers' OpenNMT-py)."""
import json
from types import SimpleNamespace

from pipeline.bench_decode import write


def test_the_tables_give_each_seqkd_row_its_ratio_to_opennmt_and_the_whole_file_takes_each_tools_best(tmp_path):
    runs = []
    for beam in (1, 5):
        for batch, onmt in ((32, 100.0), (64, 50.0)):
            runs.append({"tool": "OpenNMT-py", "beam": beam, "batch": batch, "sent_per_s": onmt, "bleu": 30.0,
                         "e2e_sent_per_s": onmt / 2})
            for tool, speed in (("seqkd fp32", 100.0), ("seqkd int8", 200.0), ("seqkd int8 shortlist", 300.0)):
                runs.append({"tool": tool, "beam": beam, "batch": batch, "sent_per_s": speed, "bleu": 31.0,
                             "gflops": 10.0, "matmul_gflops": 20.0})
                runs.append({"tool": tool, "beam": beam, "batch": batch, "whole_file": True, "bleu": 31.5,
                             "e2e_sent_per_s": speed / (4 if batch == 32 else 2)})
    assert write(SimpleNamespace(out=tmp_path, steps=10, rounds=1), runs, [32, 64]) == 0
    result = json.loads((tmp_path / "decode.json").read_text())
    row = next(r for r in result["table"] if r["batch"] == 64 and r["beam"] == 5)
    assert row["seqkd int8 shortlist"]["ratio"] == 6.0 and row["seqkd int8"]["ratio"] == 4.0
    whole = result["whole_file"]["5"]
    assert whole["OpenNMT-py"] == {"e2e_sent_per_s": 50.0, "batch": 32}  # its best batch
    assert whole["seqkd int8 shortlist"]["batch"] == 64 and whole["seqkd int8 shortlist"]["ratio"] == 3.0
    md = (tmp_path / "decode.md").read_text()
    assert "| 64 | beam 5 | 50.0 (30.00) | 100.0 (31.00) | 2.00 | 200.0 (31.00) | 4.00 | 300.0 (31.00) | 6.00 |" in md
    assert "| beam 5 | 50.0 (32) | 50.0 (64, 31.50) | 1.00 | 100.0 (64, 31.50) | 2.00 | 150.0 (64, 31.50) | 3.00 |" in md
