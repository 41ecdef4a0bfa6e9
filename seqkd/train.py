"""Training: the paper's recipe by default, resumable bit for bit, on CPU, one GPU or many (torchrun + DDP).

Recipe (seq2seq-attn's defaults, which Kim & Rush used): plain SGD at learning rate 1.0 for 13 epochs, halved at
the end of every epoch from epoch 9 on, or from the first epoch whose validation perplexity is worse than the last
(seqkd.schedule; with Adam no decay unless asked for); the loss summed over a batch and divided by its sentences;
gradient norm clipped at 5; dropout 0.3; parameters uniform in +-0.1; batches of 64 sentences of similar length.
best.pt keeps the best validation BLEU (the best perplexity when BLEU is off).

Output folder: last.pt (every `save_every` updates, at each epoch's end and at exit), best.pt (best validation
BLEU), metrics.jsonl, log.txt (set up by the entry point), manifest.json when finished.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from seqkd import io, schedule
from seqkd.checkpoint import check_vocab, load_model, read_checkpoint, save_checkpoint
from seqkd.config import TrainConfig, key_settings, to_dict
from seqkd.data import collate, concat, load_split, make_batches
from seqkd.device import Ranks, bf16_enabled, resolve_device, set_threads
from seqkd.io import SeqkdError
from seqkd.losses import kd_objective
from seqkd.metrics import greedy_bleu, perplexity
from seqkd.model import PAD, Seq2Seq
from seqkd.prepare import load_vocabs, read_lines

log = logging.getLogger(__name__)

TARGET_FILES = {"seq-kd": "train.seqkd", "seq-inter": "train.seqinter", "ref+seq-kd": "train.seqkd"}


@dataclass
class TrainState:
    """Where training stands; saved in last.pt so that a restart continues exactly."""

    step: int = 0
    epoch: int = 1
    batch_in_epoch: int = 0  # batches of the current epoch already done
    lr: float = 1.0
    decaying: bool = False  # seq2seq-attn: once decay starts it happens every epoch (seqkd.schedule)
    prev_ppl: float = math.inf
    best_score: float = -math.inf  # what best.pt is chosen by: validation BLEU, or -perplexity without BLEU
    best_bleu: float | None = None
    best_ppl: float = math.inf
    best_step: int = 0
    bad_validations: int = 0
    tokens: int = 0
    train_s: float = 0.0  # time spent in training steps, across restarts
    last_valid_step: int = -1
    done: bool = False
    stopped: str = ""  # why training ended: "epochs", "patience", "max_steps"


def stage_key(cfg: TrainConfig, data_manifest: dict) -> dict:
    """Settings and inputs; the inputs are what this run reads of other stages, by content: the data stage, the
    distilled targets, the Word-KD teacher and the checkpoint it starts from. A retrained teacher or remade
    targets change them, and the stage is then redone rather than reused."""
    inputs = {"data": data_manifest.get("key_hash")}
    inputs.update({name: io.file_digest(path) for name, path in input_files(cfg).items()})
    return {"settings": key_settings(cfg), "inputs": inputs}


def input_files(cfg: TrainConfig) -> dict[str, Path]:
    """The files of other stages this run reads besides the data; a missing one is an error naming its make
    target."""
    files = {}
    if cfg.targets != "ref":
        if not cfg.distill_dir:
            raise SeqkdError(f"targets: '{cfg.targets}' needs distill_dir (the distillation stage's folder)")
        files["targets"] = Path(cfg.distill_dir) / f"{TARGET_FILES[cfg.targets]}.tok.npy"
        if not files["targets"].exists():
            raise SeqkdError(f"targets: {files['targets']} does not exist yet; create it with `make distill`"
                             + (" (with nbest > 1 for Seq-Inter)" if cfg.targets == "seq-inter" else ""))
    if cfg.kd_alpha > 0:
        if not cfg.kd_teacher:
            raise SeqkdError("kd_alpha > 0 (Word-KD) needs a teacher checkpoint: set kd_teacher")
        files["teacher"] = Path(cfg.kd_teacher)
        if not files["teacher"].exists():
            raise SeqkdError(f"kd_teacher: {cfg.kd_teacher} does not exist yet; train it with `make teacher`")
    if cfg.init_from:
        files["init_from"] = Path(cfg.init_from)
        if not files["init_from"].exists():
            raise SeqkdError(f"init_from: {cfg.init_from}: checkpoint not found (train that model first)")
    return files


class MetricsLog:
    """metrics.jsonl: one JSON object per line (training windows and validations), appended as training goes."""

    def __init__(self, path: Path):
        self.path = path

    def append(self, fields: dict) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(fields) + "\n")
        except OSError as e:
            raise SeqkdError(f"{self.path}: could not write ({e.strerror}); free space and run again to resume from "
                             "last.pt") from None

    def trim_after(self, step: int) -> None:
        """Drop the lines written after `step`, the update a resumed run starts from (they will come again)."""
        if not self.path.exists():
            return
        lines = [line for line in self.path.read_text(encoding="utf-8").splitlines()
                 if line and json.loads(line).get("step", 0) <= step]
        with io.atomic_open(self.path) as f:
            f.write("".join(line + "\n" for line in lines))


@contextlib.contextmanager
def stop_requests(trainer: "Trainer"):
    """While training, SIGINT and SIGTERM set trainer.stop_requested: the loop saves last.pt after the update it is
    in and stops (a restart resumes there). The previous handlers come back afterwards."""
    def request(signum, _frame) -> None:
        log.warning("signal %d: stopping after this update and saving last.pt", signum)
        trainer.stop_requested = True

    handlers = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in handlers.items():
            signal.signal(s, h)


class Trainer:
    def __init__(self, cfg: TrainConfig, key: dict | None = None):
        self.cfg, self.key = cfg, key  # key: the stage key, kept in last.pt so that a resume checks its inputs
        self.device = resolve_device(cfg.device)
        self.ranks = Ranks(self.device)
        set_threads(cfg.threads)
        self.out = Path(cfg.out_dir)
        self.metrics = MetricsLog(self.out / "metrics.jsonl")
        self.src_vocab, self.tgt_vocab = load_vocabs(cfg.data_dir)
        self.data_manifest = io.read_manifest(cfg.data_dir)
        self.train_split = load_split(cfg.data_dir, "train", tgt_prefix=self.target_prefix())
        if cfg.targets == "ref+seq-kd":  # the references and the teacher's beam output: every source twice
            self.train_split = concat(load_split(cfg.data_dir, "train"), self.train_split)
        self.valid_split = load_split(cfg.data_dir, "valid")
        self.valid_refs = read_lines(Path(cfg.data_dir) / f"valid.{self.data_manifest['tgt_lang']}")
        torch.manual_seed(cfg.seed)
        self.model = Seq2Seq(cfg.model, len(self.src_vocab), len(self.tgt_vocab))
        self.parent = self.load_parent() if cfg.init_from else None
        self.model.to(self.device)
        self.teacher = self.load_teacher() if cfg.kd_alpha > 0 else None
        params = self.model.parameters()
        self.optimizer = (torch.optim.SGD(params, lr=cfg.lr) if cfg.optimizer == "sgd"
                          else torch.optim.Adam(params, lr=cfg.lr))
        self.state = TrainState(lr=cfg.lr)
        torch.manual_seed(cfg.seed + self.ranks.rank)  # dropout streams differ between ranks
        self.resume()
        self.ddp = (torch.nn.parallel.DistributedDataParallel(
            self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
            if self.ranks.world > 1 else self.model)
        self.stop_requested = False

    # ----------------------------------------------------------------------------------------------- setup
    def target_prefix(self) -> Path | None:
        files = input_files(self.cfg)
        return Path(str(files["targets"]).removesuffix(".tok.npy")) if "targets" in files else None

    def load_parent(self) -> dict:
        state = read_checkpoint(self.cfg.init_from)
        where = f"init_from {self.cfg.init_from}"
        if state["model_config"] != to_dict(self.cfg.model):
            raise SeqkdError(f"{where}: its model {state['model_config']} differs from this run's model "
                             f"{to_dict(self.cfg.model)}")
        from seqkd.vocab import Vocab

        check_vocab(where, Vocab.from_state(state["vocab"]["src"]), self.src_vocab, "source")
        check_vocab(where, Vocab.from_state(state["vocab"]["tgt"]), self.tgt_vocab, "target")
        self.model.load_state_dict(state["model"])
        log.info("starting from the weights of %s", self.cfg.init_from)
        return {"path": str(self.cfg.init_from), "lineage": state.get("lineage")}

    def load_teacher(self) -> Seq2Seq:
        input_files(self.cfg)  # a missing teacher is an error naming `make teacher`
        teacher, src_vocab, tgt_vocab, _ = load_model(self.cfg.kd_teacher, self.device)
        check_vocab(f"teacher {self.cfg.kd_teacher}", src_vocab, self.src_vocab, "source")
        check_vocab(f"teacher {self.cfg.kd_teacher}", tgt_vocab, self.tgt_vocab, "target")
        for p in teacher.parameters():
            p.requires_grad_(False)
        return teacher

    def lineage(self) -> dict:
        cfg = self.cfg
        return {"data_dir": str(cfg.data_dir), "data_key": self.data_manifest.get("key_hash"),
                "targets": cfg.targets, "distill_dir": cfg.distill_dir if cfg.targets != "ref" else None,
                "teacher": cfg.kd_teacher if cfg.kd_alpha > 0 else None, "init_from": self.parent}

    def resume(self) -> None:
        path = self.out / "last.pt"
        if not path.exists():
            return
        ck = read_checkpoint(path)
        if self.key is not None and ck.get("key") is not None and ck["key"] != self.key:
            changed = io.changed_settings(ck["key"].get("settings", {}), self.key["settings"])
            if changed:
                raise SeqkdError(f"{path}: a partial run with other settings ({'; '.join(changed[:4])}); remove "
                                 f"{self.out} to start again with the new settings, or choose another out_dir")
            io.move_aside(self.out, "a partial run from other inputs")
            return
        if ck["model_config"] != to_dict(self.cfg.model):
            changed = {k: (ck["model_config"].get(k), v) for k, v in to_dict(self.cfg.model).items()
                       if ck["model_config"].get(k) != v}
            raise SeqkdError(f"{path}: this run's model differs from the checkpoint being resumed ({changed}); "
                             "use another out_dir or remove the folder")
        from seqkd.vocab import Vocab

        check_vocab(str(path), Vocab.from_state(ck["vocab"]["src"]), self.src_vocab, "source")
        check_vocab(str(path), Vocab.from_state(ck["vocab"]["tgt"]), self.tgt_vocab, "target")
        self.model.load_state_dict(ck["model"])
        self.optimizer.load_state_dict(ck["optimizer"])
        self.state = TrainState(**ck["train_state"])
        rng = ck["rng"][self.ranks.rank] if len(ck["rng"]) == self.ranks.world else ck["rng"][0]
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)
        if self.ranks.main:
            self.metrics.trim_after(self.state.step)
        log.info("resuming %s at update %d (epoch %d, batch %d)", path, self.state.step, self.state.epoch,
                 self.state.batch_in_epoch)

    # ------------------------------------------------------------------------------------------ records
    def metric(self, **fields) -> None:
        if self.ranks.main:
            self.metrics.append(fields)

    def save(self, name: str, *, full: bool) -> None:
        rng = {"torch": torch.get_rng_state(),
               "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
        rngs = self.ranks.gather(rng) if full else [rng]
        if not self.ranks.main:
            return
        extra = {"config": to_dict(self.cfg), "lineage": self.lineage(), "train_state": dataclasses.asdict(self.state),
                 "key": self.key}
        if full:
            extra.update(optimizer=self.optimizer.state_dict(), rng=rngs)
        try:
            save_checkpoint(self.out / name, self.model, self.src_vocab, self.tgt_vocab, **extra)
        except (OSError, RuntimeError) as e:  # torch.save's errors are all about writing the file
            why = io.write_error(e, self.out / name)
            kept = " the last good last.pt is kept;" if (self.out / "last.pt").exists() else ""
            raise SeqkdError(f"{self.out / name}: could not save the checkpoint ({why});{kept} free space and run "
                             "again to resume") from None

    # ------------------------------------------------------------------------------------------ steps
    def batches(self, epoch: int) -> list[np.ndarray]:
        cfg, split = self.cfg, self.train_split
        batches = make_batches(split.src.lens, split.tgt.lens, batch_size=cfg.batch_size,
                               batch_tokens=cfg.batch_tokens, shuffle=True, seed=cfg.seed, epoch=epoch)
        if epoch <= cfg.curriculum:  # short sentences first
            batches.sort(key=lambda b: int(split.src.lens[b].max()))
        return batches

    def autocast(self):
        enabled = bf16_enabled(self.cfg.bf16, self.device)
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=enabled)

    def train_step(self, index: np.ndarray) -> tuple[float, int]:
        """One update on global batch `index` (this rank takes every world-th sentence): (summed NLL, tokens)."""
        cfg, split = self.cfg, self.train_split
        n_global = int((split.tgt.lens[index] + 1).sum())
        batch = collate(split, index[self.ranks.rank::self.ranks.world]).to(self.device)
        mask = batch.tgt_out != PAD
        with self.autocast():
            logits = self.ddp(batch.src, batch.src_lens, batch.tgt_in, mask)  # (N, V)
            teacher_logits = None
            if self.teacher is not None:
                with torch.no_grad():
                    teacher_logits = self.teacher(batch.src, batch.src_lens, batch.tgt_in, mask)
        loss, nll = kd_objective(logits, batch.tgt_out[mask], teacher_logits, alpha=cfg.kd_alpha,
                                 temperature=cfg.kd_temperature, topk=cfg.kd_topk)
        # DDP averages gradients over ranks: scale so the update equals one process on the whole batch
        denominator = len(index) if cfg.loss_norm == "sents" else n_global
        (loss * (self.ranks.world / denominator)).backward()
        nll_sum = self.ranks.sum(float(nll.detach()))
        if not math.isfinite(nll_sum):
            raise SeqkdError(f"the loss is not finite at update {self.state.step + 1} (epoch {self.state.epoch}); "
                             f"last.pt keeps the last good state (try a lower learning rate)")
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return nll_sum, n_global

    # ------------------------------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self) -> dict:
        """Validation perplexity on the references and greedy BLEU (rank 0 computes, all ranks receive)."""
        result = None
        if self.ranks.main:
            started = time.time()
            self.model.eval()
            split = self.valid_split
            result = {"valid_ppl": perplexity(self.model, split, self.device, autocast=self.autocast)}
            if self.cfg.valid_bleu:
                result["valid_bleu"] = greedy_bleu(self.model, split, self.valid_refs, self.tgt_vocab, self.device,
                                                   max_sentences=self.cfg.valid_bleu_max)
            result["valid_s"] = round(time.time() - started, 2)
            self.model.train()
        return self.ranks.broadcast(result)

    def after_validation(self, result: dict, *, epoch_end: bool) -> bool:
        """Record a validation; keep best.pt; decay the learning rate at an epoch's end; True = stop early."""
        st, cfg = self.state, self.cfg
        st.last_valid_step = st.step
        self.metric(step=st.step, epoch=st.epoch, lr=st.lr, **result)
        score = result.get("valid_bleu", -result["valid_ppl"])
        improved = score > st.best_score
        log.info("validation at update %d (epoch %d): ppl %.2f%s%s", st.step, st.epoch, result["valid_ppl"],
                 f", greedy BLEU {result['valid_bleu']:.2f}" if "valid_bleu" in result else "",
                 " (best so far)" if improved else "")
        if improved:
            st.best_score, st.best_bleu, st.best_ppl = score, result.get("valid_bleu"), result["valid_ppl"]
            st.best_step, st.bad_validations = st.step, 0
            self.save("best.pt", full=False)
        else:
            st.bad_validations += 1
        if epoch_end:
            new = schedule.after_epoch(schedule.LrState(st.lr, st.decaying, st.prev_ppl),
                                       rule=schedule.decay_rule(cfg.decay_on, cfg.optimizer),
                                       decay_start=cfg.decay_start, lr_decay=cfg.lr_decay, epoch=st.epoch,
                                       valid_ppl=result["valid_ppl"], improved=improved)
            if new.lr != st.lr:
                for group in self.optimizer.param_groups:
                    group["lr"] = new.lr
                log.info("learning rate -> %g", new.lr)
            st.lr, st.decaying, st.prev_ppl = new.lr, new.decaying, new.prev_ppl
        return bool(cfg.patience and st.bad_validations >= cfg.patience)

    # ------------------------------------------------------------------------------------------ loop
    def run(self) -> TrainState:
        cfg, st = self.cfg, self.state
        for group in self.optimizer.param_groups:
            group["lr"] = st.lr
        log.info("training on %s (%d threads), %s", self.device, torch.get_num_threads(),
                 "bf16 autocast" if bf16_enabled(cfg.bf16, self.device) else "fp32")
        self.model.train()
        with stop_requests(self):
            while not st.done and st.epoch <= cfg.epochs:
                if self.run_epoch():
                    break
            if not st.done:
                if st.last_valid_step != st.step:
                    self.after_validation(self.validate(), epoch_end=False)
                st.done, st.stopped = True, "epochs"
                self.save("last.pt", full=True)
        return st

    def run_epoch(self) -> bool:
        """Train the rest of the current epoch; True when training must stop (early stop, max_steps, signal)."""
        cfg, st = self.cfg, self.state
        batches = self.batches(st.epoch)
        bar = tqdm(total=len(batches), initial=st.batch_in_epoch, desc=f"epoch {st.epoch}", unit="batch",
                   disable=None if self.ranks.main else True, leave=False, dynamic_ncols=True)
        window_nll, window_tokens, window_start = 0.0, 0, time.time()
        try:
            for index in batches[st.batch_in_epoch:]:
                if len(index) < self.ranks.world:
                    st.batch_in_epoch += 1  # too small to give every rank a sentence
                    continue
                t0 = time.time()
                nll, tokens = self.train_step(index)
                st.train_s += time.time() - t0
                st.step, st.batch_in_epoch, st.tokens = st.step + 1, st.batch_in_epoch + 1, st.tokens + tokens
                window_nll, window_tokens = window_nll + nll, window_tokens + tokens
                bar.update(1)
                if st.step % cfg.log_every == 0:
                    elapsed = time.time() - window_start
                    ppl = math.exp(min(window_nll / window_tokens, 100))
                    self.metric(step=st.step, epoch=st.epoch, loss=window_nll / window_tokens, ppl=ppl, lr=st.lr,
                                tok_per_s=window_tokens / elapsed, tokens=st.tokens, train_s=round(st.train_s, 3))
                    bar.set_postfix(loss=f"{window_nll / window_tokens:.3f}", ppl=f"{ppl:.1f}", lr=f"{st.lr:g}",
                                    tok_s=f"{window_tokens / elapsed:.0f}")
                    if bar.disable and self.ranks.main:  # no bar on a pipe or in a file: a log line instead
                        log.info("epoch %d, update %d (%d/%d): loss %.3f, ppl %.1f, lr %g, %.0f target tokens/s",
                                 st.epoch, st.step, st.batch_in_epoch, len(batches), window_nll / window_tokens, ppl,
                                 st.lr, window_tokens / elapsed)
                    window_nll, window_tokens, window_start = 0.0, 0, time.time()
                if cfg.valid_every and st.step % cfg.valid_every == 0 and st.batch_in_epoch < len(batches):
                    if self.after_validation(self.validate(), epoch_end=False):
                        return self.finish("patience", f"early stop: no better validation score in {cfg.patience} "
                                                       "validations")
                if cfg.max_steps and st.step >= cfg.max_steps:
                    return self.finish("max_steps", f"reached max_steps {cfg.max_steps}")
                if self.stop_requested:
                    self.save("last.pt", full=True)
                    raise KeyboardInterrupt
                if st.step % cfg.save_every == 0:
                    self.save("last.pt", full=True)
        finally:
            bar.close()
        stop = self.after_validation(self.validate(), epoch_end=True)
        st.epoch, st.batch_in_epoch = st.epoch + 1, 0
        if stop:
            return self.finish("patience", f"early stop: no better validation score in {cfg.patience} validations")
        self.save("last.pt", full=True)
        return False

    def finish(self, reason: str, why: str) -> bool:
        log.info("%s", why)
        if self.state.last_valid_step != self.state.step:
            self.after_validation(self.validate(), epoch_end=False)
        self.state.done, self.state.stopped = True, reason
        self.save("last.pt", full=True)
        return True


def train(cfg: TrainConfig) -> dict:
    """Run (or resume, or skip when finished) a training stage; returns its manifest."""
    started = time.time()
    out = Path(cfg.out_dir)
    data_manifest = io.read_manifest(cfg.data_dir)
    if data_manifest is None:
        raise SeqkdError(f"data_dir: {cfg.data_dir} holds no finished data stage; create it with `make data`")
    key = stage_key(cfg, data_manifest)
    upstream = [Path(cfg.data_dir) / io.MANIFEST] + [p.parent / io.MANIFEST for p in input_files(cfg).values()]
    if io.stage_is_done(out, key, upstream):
        log.info("%s is finished; nothing to do", out)
        return io.read_manifest(out)
    out.mkdir(parents=True, exist_ok=True)
    trainer = Trainer(cfg, key)
    if trainer.ranks.main:
        io.write_json(out / "config.json", to_dict(cfg))
    st = trainer.run()
    if not trainer.ranks.main:
        return {}
    return io.write_manifest(
        out, stage="train", key=key, started=started, config=to_dict(cfg), lineage=trainer.lineage(),
        parameters=sum(p.numel() for p in trainer.model.parameters()), updates=st.step, epochs_done=st.epoch - 1,
        stopped=st.stopped, final_lr=st.lr,
        best={"valid_bleu": st.best_bleu, "valid_ppl": st.best_ppl, "step": st.best_step},
        train_tok_per_s=round(st.tokens / st.train_s, 1) if st.train_s else None, train_s=round(st.train_s, 1),
        device=str(trainer.device), world_size=trainer.ranks.world, torch=torch.__version__)
