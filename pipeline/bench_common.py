"""What the benchmarks against OpenNMT-py share: the peer harness (../shared/peers), the same data, seqkd's side.

  python -m pipeline.bench_train    # make bench-train: training target tokens/s of the 2x500 student on multi30k
  python -m pipeline.bench_decode   # make bench-decode: sentences/s and BLEU, seqkd fp32 and int8 against OpenNMT-py

Both use the peer harness's own data preparation (its joint SentencePiece model on ../shared/data/multi30k), so
seqkd and OpenNMT-py read the same pieces, and alternate runs of the two tools (A B A B ...) so that the machine's
drift hits both. Results go to runs/bench/{train,decode}.{json,md}, with every run listed.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

from pipeline.common import setup_logging
from seqkd.io import SeqkdError

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT.parent / "shared" / "peers"
DATA = ROOT.parent / "shared" / "data" / "multi30k"
ONMT_VENV = Path("/tmp/peers-venv-onmt")


def sh(cmd: list[str], log: Path, env: dict | None = None) -> None:
    """Run a command, its output to `log`; a failure is an error naming the log."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as f:
        proc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=ROOT)
    if proc.returncode:
        raise SeqkdError(f"{' '.join(map(str, cmd[:4]))} ... failed (exit {proc.returncode}); see {log}")


def check_peers(args) -> None:
    if not (args.peers / "run.sh").exists():
        raise SeqkdError(f"{args.peers}: the peer harness is missing (expected run.sh there)")
    if not (ONMT_VENV / "bin" / "onmt_train").exists():
        raise SeqkdError(f"OpenNMT-py is not installed: run `bash {args.peers}/setup.sh onmt` first (about a minute)")


def peer_run(args, out: Path, **knobs) -> list[dict]:
    """One call of the peer harness for OpenNMT-py; returns its results.csv rows."""
    env = {"PEERS": "onmt", "WORK": str(args.work), **{k.upper(): str(v) for k, v in knobs.items()}}
    sh(["bash", str(args.peers / "run.sh"), str(args.data), str(out)], out.with_suffix(".log"), env)
    with open(out / "results.csv") as f:
        return list(csv.DictReader(f))


def prepare_seqkd_data(args) -> Path:
    """seqkd's data stage on the same corpus with the peers' SentencePiece model, nothing filtered."""
    data_dir = args.out / "data"
    spm_model = args.work / "data" / "spm.model"
    if not spm_model.exists():
        raise SeqkdError(f"{spm_model} missing: the peer harness's preparation did not run")
    sh([sys.executable, "-m", "pipeline.cli", "data", "--corpus", "multi30k", "--mirror", str(args.data),
        "--spm_model", str(spm_model), "--max_ratio", "1000", "--max_tokens", "100000", "--out_dir", str(data_dir),
        "--raw_dir", str(args.out / "raw")], args.out / "logs" / "seqkd-data.log")
    return data_dir


def seqkd_train(args, data_dir: Path, out: Path, steps: int) -> dict:
    """seqkd's 2x500 student with the peers' recipe: SGD lr 1.0, clip 5, dropout 0.3, 64 sentences per batch."""
    if out.exists():
        subprocess.run(["rm", "-rf", str(out)], check=True)
    started = time.time()
    sh([sys.executable, "-m", "pipeline.cli", "train", "--data_dir", str(data_dir), "--out_dir", str(out),
        "--model.layers", "2", "--model.hidden", "500", "--model.emb", "500", "--model.dropout", "0.3",
        "--optimizer", "sgd", "--lr", "1.0", "--max_grad_norm", "5", "--batch_size", "64", "--max_steps", str(steps),
        "--log_every", "25", "--save_every", "100000", "--valid_bleu", "false", "--seed", "1234", "--device", "cpu"],
       out.parent / f"{out.name}.log")
    wall = time.time() - started
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    windows = [x for x in lines if "tokens" in x]
    first, last = windows[0], windows[-1]  # as the peer harness: everything after the first 25-step window
    return {"tool": "seqkd", "steps": last["step"], "tok_per_s": (last["tokens"] - first["tokens"]) /
            (last["train_s"] - first["train_s"]), "e2e_tok_per_s": last["tokens"] / wall, "wall_s": wall}


def median(rows: list[dict], key: str) -> float:
    return statistics.median(float(r[key]) for r in rows if r.get(key) not in (None, ""))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    import torch

    return (f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, torch {torch.__version__} "
            f"({torch.get_num_threads()} threads)")


def parser(prog: str, doc: str, *, steps: int) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DATA, help="multi30k folder (train/valid/test.{en,de}.gz)")
    p.add_argument("--peers", type=Path, default=PEERS, help="the peer harness folder")
    p.add_argument("--out", type=Path, default=ROOT / "runs" / "bench")
    p.add_argument("--steps", type=int, default=steps, help="training updates")
    p.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two tools")
    return p


def prepare_args(args) -> argparse.Namespace:
    args.out = args.out.resolve()
    args.work = args.out / "peers-work"
    setup_logging(args.out)
    if not args.data.exists():
        raise SeqkdError(f"{args.data} not found (the multi30k mirror, ../shared/data/multi30k)")
    return args
