import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from seqkd.checkpoint import read_checkpoint
from seqkd.config import ModelConfig
from seqkd.data import concat, load_split, make_batches
from seqkd.io import SeqkdError
from seqkd.train import train
from tests.conftest import tiny_train_config

ROOT = Path(__file__).resolve().parents[1]


def cli_train(data: Path, out: Path, *extra: str, launcher: list[str] | None = None) -> subprocess.Popen:
    args = ["-m", "pipeline.cli", "train", "--data_dir", str(data), "--out_dir", str(out), "--model.layers", "2",
            "--model.hidden", "48", "--model.emb", "32", "--model.dropout", "0.2", "--epochs", "2",
            "--batch_size", "8", "--optimizer", "adam", "--lr", "0.005", "--save_every", "3", "--log_every", "1",
            "--valid_bleu_max", "4", "--threads", "1", "--device", "cpu", *extra]
    cmd = (launcher or [sys.executable]) + args
    return subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    return out


def params(path: Path) -> dict:
    return read_checkpoint(path)["model"]


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_parameters(tiny_data, tmp_path):
    finish(cli_train(tiny_data, tmp_path / "whole"))
    proc = cli_train(tiny_data, tmp_path / "killed")
    last = tmp_path / "killed" / "last.pt"
    deadline = time.time() + 120
    while not last.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = read_checkpoint(last)["train_state"]
    assert not (tmp_path / "killed" / "manifest.json").exists()
    assert state["epoch"] == 1 and 0 < state["batch_in_epoch"] < 20, state  # killed in the middle of epoch 1
    finish(cli_train(tiny_data, tmp_path / "killed"))
    a, b = params(tmp_path / "whole" / "last.pt"), params(last)
    assert all(torch.equal(a[k], b[k]) for k in a), "resumed parameters differ from the uninterrupted run"
    lines = [json.loads(x) for x in (tmp_path / "killed" / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in lines if "loss" in x]
    assert steps == sorted(set(steps)), "metrics.jsonl repeats the steps redone after the restart"


@pytest.mark.slow
def test_two_gloo_processes_follow_the_one_process_loss_curve(tiny_data, tmp_path):
    one = ["--model.dropout", "0.0", "--epochs", "1"]
    finish(cli_train(tiny_data, tmp_path / "one", *one))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    finish(cli_train(tiny_data, tmp_path / "two", *one, launcher=torchrun))

    def curve(out):
        return [x["loss"] for x in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in x]

    a, b = curve(tmp_path / "one"), curve(tmp_path / "two")
    assert len(a) == len(b) == 20
    assert np.allclose(a, b, rtol=1e-4, atol=1e-5), (a, b)
    pa, pb = params(tmp_path / "one" / "last.pt"), params(tmp_path / "two" / "last.pt")
    assert all(torch.allclose(pa[k], pb[k], atol=1e-4) for k in pa)


def test_batches_respect_the_budgets_and_repeat_for_the_same_epoch():
    rng = np.random.default_rng(0)
    src, tgt = rng.integers(1, 30, 500), rng.integers(1, 30, 500)
    batches = make_batches(src, tgt, batch_size=32, batch_tokens=300, shuffle=True, seed=3, epoch=2)
    assert sorted(np.concatenate(batches).tolist()) == list(range(500))
    assert all(len(b) <= 32 and len(b) * (tgt[b] + 1).max() <= 300 for b in batches)
    again = make_batches(src, tgt, batch_size=32, batch_tokens=300, shuffle=True, seed=3, epoch=2)
    other = make_batches(src, tgt, batch_size=32, batch_tokens=300, shuffle=True, seed=3, epoch=3)
    assert all(np.array_equal(x, y) for x, y in zip(batches, again))
    assert not all(np.array_equal(x, y) for x, y in zip(batches, other))


def test_resuming_with_another_model_is_an_error(tiny_data, tmp_path):
    train(tiny_train_config(tiny_data, tmp_path, epochs=1))
    (tmp_path / "manifest.json").unlink()  # pretend the run was interrupted
    before = (tmp_path / "last.pt").read_bytes()
    with pytest.raises(SeqkdError, match="a partial run with other settings .model.hidden: 16 -> 24"):
        train(tiny_train_config(tiny_data, tmp_path, epochs=1, model=ModelConfig(layers=1, hidden=24, emb=16)))
    assert (tmp_path / "last.pt").read_bytes() == before


def test_a_truncated_checkpoint_is_an_error_and_is_left_alone(tiny_data, tmp_path):
    train(tiny_train_config(tiny_data, tmp_path, epochs=1))
    (tmp_path / "manifest.json").unlink()
    last = tmp_path / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])
    with pytest.raises(SeqkdError, match="last.pt: not a readable checkpoint"):
        train(tiny_train_config(tiny_data, tmp_path, epochs=1))
    assert last.stat().st_size == 1000


def test_missing_parent_and_teacher_checkpoints_name_the_make_target(tiny_data, tmp_path):
    with pytest.raises(SeqkdError, match="checkpoint not found"):
        train(tiny_train_config(tiny_data, tmp_path / "a", init_from=str(tmp_path / "nope.pt")))
    with pytest.raises(SeqkdError, match="make teacher"):
        train(tiny_train_config(tiny_data, tmp_path / "b", kd_alpha=0.5, kd_teacher=str(tmp_path / "nope.pt")))
    with pytest.raises(SeqkdError, match="make distill"):
        train(tiny_train_config(tiny_data, tmp_path / "c", targets="seq-kd", distill_dir=str(tmp_path)))


def test_a_checkpoint_from_other_data_is_rejected(tiny_data, tmp_path):
    from tests.conftest import write_toy_corpus
    from seqkd.config import DataConfig
    from seqkd.prepare import prepare_data

    write_toy_corpus(tmp_path / "corpus", seed=5)
    (tmp_path / "corpus" / "train.de").write_text((tmp_path / "corpus" / "train.de").read_text().upper())
    other = tmp_path / "data"
    prepare_data(DataConfig(corpus="text", src="en", tgt="de", train=str(tmp_path / "corpus" / "train"),
                            valid=str(tmp_path / "corpus" / "valid"), out_dir=str(other), raw_dir=str(tmp_path / "raw"),
                            vocab_size=90, workers=1))
    train(tiny_train_config(other, tmp_path / "parent", epochs=1))
    with pytest.raises(SeqkdError, match="vocabulary .* differs from the data"):
        train(tiny_train_config(tiny_data, tmp_path / "child", init_from=str(tmp_path / "parent" / "best.pt")))


def test_a_non_finite_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(tiny_data, tmp_path):
    cfg = tiny_train_config(tiny_data, tmp_path, optimizer="sgd", lr=1e38, max_grad_norm=1e38, save_every=1)
    with pytest.raises(SeqkdError, match=r"not finite at update (\d+)") as e:
        train(cfg)
    failed = int(str(e.value).split("update ")[1].split()[0])
    kept = read_checkpoint(tmp_path / "last.pt")["train_state"]
    assert kept["step"] == failed - 1 and not (tmp_path / "manifest.json").exists()


def test_a_finished_run_is_not_redone(tiny_data, tmp_path):
    cfg = tiny_train_config(tiny_data, tmp_path, epochs=1)
    first = train(cfg)
    mtime = (tmp_path / "last.pt").stat().st_mtime_ns
    assert train(cfg) == first and (tmp_path / "last.pt").stat().st_mtime_ns == mtime


def test_loss_norm_divides_the_batch_loss_by_sentences_or_by_target_tokens(tiny_data, tmp_path):
    from seqkd.train import Trainer

    def update(norm):
        cfg = tiny_train_config(tiny_data, tmp_path / norm, optimizer="sgd", lr=0.1, max_grad_norm=1e9,
                                loss_norm=norm, model=ModelConfig(layers=1, hidden=24, emb=16, dropout=0.0))
        trainer = Trainer(cfg)
        before = [p.detach().clone() for p in trainer.model.parameters()]
        index = trainer.batches(1)[0]
        trainer.train_step(index)
        delta = torch.cat([(p.detach() - b).flatten() for p, b in zip(trainer.model.parameters(), before)])
        return delta, len(index), int((trainer.train_split.tgt.lens[index] + 1).sum())

    per_sentence, n_sents, n_tokens = update("sents")
    per_token, _, _ = update("tokens")
    assert n_tokens > 2 * n_sents
    # plain SGD: the update is the gradient, so the two differ by exactly tokens / sentences
    assert torch.allclose(per_sentence, per_token * (n_tokens / n_sents), rtol=1e-4, atol=1e-7)


def test_search_batches_go_longest_first_with_ties_in_input_order_and_respect_the_token_budget():
    lens = np.array([3, 7, 7, 1, 5, 7, 2])
    batches = make_batches(lens, None, batch_size=3, batch_tokens=15, longest_first=True)
    # longest first, the three 7s in input order (1, 2, 5) but 3 x 7 > 15: two of them, then 7 and 5 (2 x 7 <= 15)
    assert [b.tolist() for b in batches] == [[1, 2], [5, 4], [0, 6, 3]]


def test_ref_plus_seq_kd_trains_on_the_references_and_the_distilled_targets_each_source_twice(tiny_data, tmp_path):
    ref = load_split(tiny_data, "train")
    distill = tmp_path / "distill"
    distill.mkdir()
    # distilled targets: each reference reversed, so that the two halves differ
    np.save(distill / "train.seqkd.tok.npy", np.concatenate([ref.tgt[i][::-1] for i in range(len(ref))]).astype(ref.tgt.tok.dtype))
    np.save(distill / "train.seqkd.off.npy", np.asarray(ref.tgt.off))
    mixed = concat(ref, load_split(tiny_data, "train", tgt_prefix=distill / "train.seqkd"))
    n = len(ref)
    assert len(mixed) == 2 * n
    for i in (0, 1, n - 1):
        assert np.array_equal(mixed.src[i], ref.src[i]) and np.array_equal(mixed.src[n + i], ref.src[i])
        assert np.array_equal(mixed.tgt[i], ref.tgt[i]) and np.array_equal(mixed.tgt[n + i], ref.tgt[i][::-1])
    one = train(tiny_train_config(tiny_data, tmp_path / "ref", epochs=1, valid_bleu=False))
    both = train(tiny_train_config(tiny_data, tmp_path / "both", epochs=1, valid_bleu=False, targets="ref+seq-kd",
                                   distill_dir=str(distill)))
    assert 2 * one["updates"] - 1 <= both["updates"] <= 2 * one["updates"] + 1
    assert both["lineage"]["targets"] == "ref+seq-kd" and both["lineage"]["distill_dir"] == str(distill)
