import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import sacrebleu

from seqkd import distill as distill_module
from seqkd.checkpoint import load_model
from seqkd.config import DistillConfig
from seqkd.data import load_split
from seqkd.distill import distill
from seqkd.io import SeqkdError
from seqkd.prepare import read_lines
from seqkd.search import translate_ids

ROOT = Path(__file__).resolve().parents[1]
OUTPUTS = ("train.seqkd.de", "train.seqkd.tok.npy", "train.seqkd.off.npy", "train.seqinter.de",
           "train.seqinter.tok.npy", "train.seqinter.off.npy")


def config(data: Path, teacher: Path, out: Path, **kw) -> DistillConfig:
    base = dict(teacher=str(teacher), data_dir=str(data), out_dir=str(out), beam=3, nbest=3, shard_size=16,
                device="cpu", batch_size=8)
    base.update(kw)
    return DistillConfig(**base)


def cli(data: Path, teacher: Path, out: Path, *extra: str, launcher=None) -> subprocess.Popen:
    args = ["-m", "pipeline.cli", "distill", "--teacher", str(teacher), "--data_dir", str(data), "--out_dir", str(out),
            "--beam", "3", "--nbest", "3", "--shard_size", "16", "--batch_size", "8", "--device", "cpu",
            "--threads", "1", *extra]
    return subprocess.Popen((launcher or [sys.executable]) + args, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(proc) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]


def same_outputs(a: Path, b: Path) -> bool:
    return all((a / f).read_bytes() == (b / f).read_bytes() for f in OUTPUTS)


@pytest.fixture(scope="module")
def reference_run(tiny_data, tiny_teacher, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("distill")
    finish(cli(tiny_data, tiny_teacher, out))
    return out


def test_targets_are_the_teachers_beam_output_in_corpus_order(tiny_data, tiny_teacher, reference_run):
    model, _, tgt_vocab, _ = load_model(tiny_teacher)
    split = load_split(tiny_data, "train")
    sources = [split.src[i] for i in range(len(split))]
    expected = [tgt_vocab.decode(h[0].tokens) for h in translate_ids(model, sources, beam=3)]
    assert (reference_run / "train.seqkd.de").read_text(encoding="utf-8").split("\n")[:-1] == expected
    kd = load_split(tiny_data, "train", tgt_prefix=reference_run / "train.seqkd")
    assert [tgt_vocab.decode(kd.tgt[i]) for i in range(len(kd))] == expected


def test_seq_inter_picks_the_nbest_entry_with_the_best_sentence_bleu(tiny_data, tiny_teacher, reference_run):
    model, _, tgt_vocab, _ = load_model(tiny_teacher)
    split = load_split(tiny_data, "train")
    refs = read_lines(tiny_data / "train.de")
    lists = translate_ids(model, [split.src[i] for i in range(len(split))], beam=3, nbest=3)
    chosen = (reference_run / "train.seqinter.de").read_text(encoding="utf-8").split("\n")[:-1]
    for hyps, ref, pick in zip(lists, refs, chosen):
        scores = [sacrebleu.sentence_bleu(tgt_vocab.decode(h.tokens), [ref]).score for h in hyps]
        assert sacrebleu.sentence_bleu(pick, [ref]).score == pytest.approx(max(scores))
    manifest = json.loads((reference_run / "manifest.json").read_text())
    for key in ("sentences_per_s", "seqkd", "seqinter"):
        assert key in manifest
    assert 0 <= manifest["seqkd"]["identical_to_reference"] <= 1 and manifest["seqinter"]["nbest"] == 3


def test_the_targets_are_real_translations_and_the_manifest_counts_empty_and_cut_ones(tiny_data, reference_run):
    targets = (reference_run / "train.seqkd.de").read_text(encoding="utf-8").split("\n")[:-1]
    refs = read_lines(tiny_data / "train.de")
    assert all(t.strip() for t in targets)  # min_len 1: no empty target
    assert sacrebleu.corpus_bleu(targets, [refs]).score > 5  # the teacher has learned something of the task
    manifest = json.loads((reference_run / "manifest.json").read_text())
    assert manifest["seqkd"]["empty"] == 0 and manifest["seqinter"]["empty"] == 0
    kd = load_split(tiny_data, "train", tgt_prefix=reference_run / "train.seqkd")
    limits = np.floor(1.5 * kd.src.lens + 10)
    assert manifest["seqkd"]["at_length_limit"] == int((kd.tgt.lens >= limits).sum())


def test_an_eos_loving_teacher_gives_counted_empty_targets_only_without_min_len(tiny_data, tiny_teacher, tmp_path):
    import torch

    from seqkd.checkpoint import read_checkpoint
    from seqkd.model import EOS

    state = read_checkpoint(tiny_teacher)
    state["model"]["out.bias"][EOS] = 50.0  # </s> first at every step
    torch.save(state, tmp_path / "eos.pt")
    n = len(load_split(tiny_data, "train"))
    free = distill(config(tiny_data, tmp_path / "eos.pt", tmp_path / "free", min_len=0, nbest=1))
    assert free["seqkd"]["empty"] == n
    kept = distill(config(tiny_data, tmp_path / "eos.pt", tmp_path / "kept", nbest=1))
    assert kept["seqkd"]["empty"] == 0


@pytest.mark.slow
def test_kill_and_restart_gives_byte_identical_targets(tiny_data, tiny_teacher, reference_run, tmp_path):
    proc = cli(tiny_data, tiny_teacher, tmp_path)
    first = tmp_path / "shards" / "shard-000000.json"
    deadline = time.time() + 120
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in (tmp_path / "shards").glob("shard-*.json"))
    assert done and len(done) < 10 and not (tmp_path / "manifest.json").exists()
    mtimes = {p: (tmp_path / "shards" / p).stat().st_mtime_ns for p in done}
    finish(cli(tiny_data, tiny_teacher, tmp_path))
    assert all((tmp_path / "shards" / p).stat().st_mtime_ns == m for p, m in mtimes.items()), "finished shards redone"
    assert same_outputs(tmp_path, reference_run)


@pytest.mark.slow
def test_two_processes_by_shard_and_by_torchrun_match_one(tiny_data, tiny_teacher, reference_run, tmp_path):
    procs = [cli(tiny_data, tiny_teacher, tmp_path / "shards", "--shard", f"{i}/2") for i in range(2)]
    for p in procs:
        finish(p)
    assert not (tmp_path / "shards" / "manifest.json").exists()  # independent processes leave the join
    finish(cli(tiny_data, tiny_teacher, tmp_path / "shards"))
    assert same_outputs(tmp_path / "shards", reference_run)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    finish(cli(tiny_data, tiny_teacher, tmp_path / "torchrun", launcher=torchrun))
    assert same_outputs(tmp_path / "torchrun", reference_run)


def test_a_full_disk_during_a_shard_write_keeps_no_corrupt_shard(tiny_data, tiny_teacher, tmp_path, monkeypatch):
    real_dump, calls = json.dump, []

    def dump(obj, f, **kw):
        if "kd" not in obj:  # meta.json and other files: unchanged
            return real_dump(obj, f, **kw)
        calls.append(obj["shard"])
        if len(calls) == 2:
            f.write('{"shard": 1, "kd": [[4, 5')  # half a shard, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_dump(obj, f, **kw)

    monkeypatch.setattr(distill_module.json, "dump", dump)
    with pytest.raises(SeqkdError, match="shard-000001.json: could not write the shard \\(the disk is full\\)"):
        distill(config(tiny_data, tiny_teacher, tmp_path))
    shards = tmp_path / "shards"
    assert sorted(p.name for p in shards.iterdir()) == ["meta.json", "shard-000000.json"]  # no temp file, no half shard
    monkeypatch.undo()
    manifest = distill(config(tiny_data, tiny_teacher, tmp_path))
    assert manifest["sentences"] == len(load_split(tiny_data, "train"))


def test_a_source_changed_since_a_partial_run_is_an_error(tiny_data, tiny_teacher, tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir(parents=True)
    cfg = config(tiny_data, tiny_teacher, tmp_path)
    key = distill_module.stage_key(cfg, json.loads((tiny_data / "manifest.json").read_text()), 999)
    (shards / "meta.json").write_text(json.dumps(key))
    n = len(load_split(tiny_data, "train"))
    with pytest.raises(SeqkdError, match=f"now has {n} sentences, the partial run was made for 999"):
        distill(cfg)


def test_a_teacher_with_another_vocabulary_is_rejected(tiny_data, tiny_teacher, tmp_path):
    import torch

    from seqkd.checkpoint import read_checkpoint

    state = read_checkpoint(tiny_teacher)
    state["vocab"]["tgt"]["pieces"] = state["vocab"]["tgt"]["pieces"][:-1] + ["▁other"]
    torch.save(state, tmp_path / "other.pt")
    with pytest.raises(SeqkdError, match="target vocabulary .* differs from the data"):
        distill(config(tiny_data, tmp_path / "other.pt", tmp_path / "out"))
    assert not (tmp_path / "out" / "shards").exists()


def test_missing_inputs_name_the_make_target(tiny_data, tmp_path):
    with pytest.raises(SeqkdError, match="make teacher"):
        distill(config(tiny_data, tmp_path / "none.pt", tmp_path / "out"))
    with pytest.raises(SeqkdError, match="shard: expected 'i/n'"):
        distill_module.parse_shard("2")
    assert np.array_equal(distill_module.parse_shard("1/4"), (1, 4))
