"""Distillation data: the teacher's beam search over the whole training source.

Seq-KD (Kim & Rush 2016, sec. 3.2): the target of each training sentence becomes the teacher's beam-search output
(beam 5). Seq-Inter (sec. 3.3): from the teacher's n-best list (35 in the paper) the candidate with the highest
smoothed sentence BLEU against the reference.

Work is cut into shards of `shard_size` sentences, each written atomically as soon as it is done, so a run that is
killed loses at most one shard and a restart skips finished ones. Shard i belongs to process i mod n (`--shard i/n`
or torchrun's ranks); the join writes, in corpus order:
  train.seqkd.{tok,off}.npy + train.seqkd.<tgt lang>          Seq-KD targets, arrays and detokenized text
  train.seqinter.{tok,off}.npy + train.seqinter.<tgt lang>    Seq-Inter targets (when nbest > 1)
  manifest.json                                               settings, speed and statistics
"""
from __future__ import annotations

import errno
import json
import logging
import math
import time
from pathlib import Path

import numpy as np
import sacrebleu
import torch
from tqdm import tqdm

from seqkd import io
from seqkd.bleu import seq_inter_choices
from seqkd.checkpoint import check_vocab, load_model
from seqkd.config import DistillConfig, key_settings, to_dict
from seqkd.data import load_split
from seqkd.device import rank_and_world, resolve_device, set_threads
from seqkd.io import SeqkdError
from seqkd.prepare import load_vocabs, read_lines
from seqkd.search import translate_ids
from seqkd.translate_text import check_search

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def parse_shard(spec: str | None) -> tuple[int, int] | None:
    if spec is None:
        return None
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise SeqkdError(f"shard: expected 'i/n' (e.g. 0/4), got {spec!r}") from None
    if not 0 <= i < n:
        raise SeqkdError(f"shard: need 0 <= i < n, got {spec!r}")
    return i, n


def stage_key(cfg: DistillConfig, data_manifest: dict, n_sentences: int) -> dict:
    """Settings and inputs: the data stage and the teacher checkpoint by content."""
    return {"settings": key_settings(cfg), "inputs": {"data": data_manifest.get("key_hash"),
                                                  "teacher": io.file_digest(cfg.teacher), "sentences": n_sentences}}


def check_partial_run(shard_dir: Path, key: dict) -> None:
    """A partial run is resumed only with the same settings and inputs; otherwise say what changed."""
    meta_path = shard_dir / "meta.json"
    if not meta_path.exists():
        io.write_json(meta_path, key)
        return
    old = io.read_json(meta_path)
    if old == key:
        return
    old_inputs, inputs = old.get("inputs", {}), key["inputs"]
    if old_inputs.get("sentences") != inputs["sentences"]:
        why = (f"the training source now has {inputs['sentences']} sentences, the partial run was made for "
               f"{old_inputs.get('sentences')}")
    else:
        why = "; ".join(io.changed_settings(old.get("settings", {}), key["settings"])
                        + [f"{k} changed" for k in inputs if old_inputs.get(k) != inputs[k]])
    raise SeqkdError(f"{shard_dir}: shards of a partial run with other inputs ({why}); "
                     f"remove {shard_dir} to start over")


def shard_path(shard_dir: Path, i: int) -> Path:
    return shard_dir / f"shard-{i:06d}.json"


def write_shard(path: Path, record: dict) -> None:
    try:
        with io.atomic_open(path) as f:
            json.dump(record, f, separators=(",", ":"))
    except OSError as e:
        what = "the disk is full" if e.errno == errno.ENOSPC else str(e)
        raise SeqkdError(f"{path}: could not write the shard ({what}); nothing of it was kept, "
                         "finished shards are intact: free space and run again") from None


def read_shard(path: Path) -> dict:
    try:
        return io.read_json(path)
    except SeqkdError as e:
        raise SeqkdError(f"{e}; remove {path} and run again to redo that shard") from None


def distill_shard(model, sources: list[np.ndarray], refs: list[str], tgt_vocab, cfg: DistillConfig, device,
                  progress) -> dict:
    """Seq-KD targets (and Seq-Inter choices) for one shard."""
    started = time.time()
    search = {**cfg.search(), "device": device}
    nbest_in_beam = 1 < cfg.nbest <= cfg.beam
    hyps = translate_ids(model, sources, nbest=cfg.nbest if nbest_in_beam else 1, progress=progress, **search)
    record = {"sentences": len(sources), "kd": [h[0].tokens for h in hyps], "kd_logp": [h[0].log_prob for h in hyps]}
    if cfg.nbest > 1:
        lists = hyps if nbest_in_beam else translate_ids(model, sources, nbest=cfg.nbest, **{**search, "beam": cfg.nbest})
        texts = [[tgt_vocab.decode(h.tokens) for h in hs] for hs in lists]
        choices = seq_inter_choices(texts, refs, workers=cfg.bleu_workers)
        record["inter"] = [hs[i].tokens for hs, (i, _) in zip(lists, choices)]
        record["inter_rank"] = [i for i, _ in choices]
        record["inter_bleu"] = [b for _, b in choices]
    record["decode_s"] = round(time.time() - started, 3)
    return record


def save_targets(out: Path, name: str, rows: list[list[int]], texts: list[str], lang: str, vocab_size: int) -> None:
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    ids = np.fromiter((t for r in rows for t in r), dtype=np.int64, count=int(lens.sum()))
    dtype = np.uint16 if vocab_size < 2 ** 16 else np.int32
    for suffix, array in (("tok", ids.astype(dtype)), ("off", np.concatenate([[0], np.cumsum(lens)]))):
        with io.atomic_open(out / f"{name}.{suffix}.npy", "wb") as f:
            np.save(f, array)
    with io.atomic_open(out / f"{name}.{lang}") as f:
        f.write("".join(t + "\n" for t in texts))


def target_counts(rows: list[list[int]], texts: list[str], refs: list[str], ref_lens: np.ndarray,
                  limits: np.ndarray) -> dict:
    """What a student will be trained on, against the references: corpus BLEU, length ratio in pieces, empty
    targets (an empty output teaches a student to stop at once) and targets that end only because the length
    limit `limits` (per sentence, in pieces) was reached (usually a teacher repeating itself)."""
    lens = np.array([len(r) for r in rows], dtype=np.int64)
    return {"bleu": round(sacrebleu.corpus_bleu(texts, [refs], force=True).score, 2),
            "length_ratio": round(int(lens.sum()) / max(1, int(ref_lens.sum())), 4),
            "empty": int((lens == 0).sum()), "at_length_limit": int((lens >= limits).sum())}


def wait_for(paths: list[Path], poll_s: float = 5.0) -> None:
    """Rank 0 of a torchrun job waits for the other ranks' shards (torchrun stops everyone if a rank fails)."""
    missing = [p for p in paths if not p.exists()]
    while missing:
        log.info("waiting for %d shards of other ranks", len(missing))
        time.sleep(poll_s)
        missing = [p for p in missing if not p.exists()]


def distill(cfg: DistillConfig) -> dict:
    """Run (or resume, or skip when finished) the distillation stage; returns its manifest ({} for a process that
    only wrote its own shards)."""
    started = time.time()
    out, data_dir = Path(cfg.out_dir), Path(cfg.data_dir)
    data_manifest = io.read_manifest(data_dir)
    if data_manifest is None:
        raise SeqkdError(f"data_dir: {data_dir} holds no finished data stage; create it with `make data`")
    if not Path(cfg.teacher).exists():
        raise SeqkdError(f"teacher: {cfg.teacher} does not exist yet; train it with `make teacher`")
    split = load_split(data_dir, "train")
    n = len(split)
    key = stage_key(cfg, data_manifest, n)
    if io.stage_is_done(out, key, [data_dir / io.MANIFEST, Path(cfg.teacher).parent / io.MANIFEST]):
        log.info("%s is finished; nothing to do", out)
        return io.read_manifest(out)
    src_vocab, tgt_vocab = load_vocabs(data_dir)
    check_search(cfg.beam, min(cfg.nbest, cfg.beam), tgt_vocab)
    check_search(max(cfg.beam, cfg.nbest), cfg.nbest, tgt_vocab)  # a longer n-best list is a second, wider search
    device = resolve_device(cfg.device)
    set_threads(cfg.threads)
    model, t_src, t_tgt, _ = load_model(cfg.teacher, device)
    check_vocab(f"teacher {cfg.teacher}", t_src, src_vocab, "source")
    check_vocab(f"teacher {cfg.teacher}", t_tgt, tgt_vocab, "target")
    if cfg.dtype != "fp32":
        if device.type != "cuda":
            raise SeqkdError(f"dtype: {cfg.dtype} needs a CUDA device (the CPU decodes in fp32)")
        model = model.to(DTYPES[cfg.dtype])
    tgt_lang = data_manifest["tgt_lang"]
    refs = read_lines(data_dir / f"train.{tgt_lang}")

    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    check_partial_run(shard_dir, key)
    n_shards = math.ceil(n / cfg.shard_size)
    only = parse_shard(cfg.shard)
    rank, world = only if only else rank_and_world()
    mine = [i for i in range(n_shards) if i % world == rank and not shard_path(shard_dir, i).exists()]
    todo = sum(min(cfg.shard_size, n - i * cfg.shard_size) for i in mine)
    log.info("distilling %d of %d sentences (%d shards of %d) with beam %d%s", todo, n, len(mine), n_shards,
             cfg.beam, f", Seq-Inter from the {cfg.nbest}-best" if cfg.nbest > 1 else "")
    with tqdm(total=todo, unit="sent", desc="distill", disable=None, dynamic_ncols=True) as bar:
        for i in mine:
            lo, hi = i * cfg.shard_size, min((i + 1) * cfg.shard_size, n)
            record = distill_shard(model, [split.src[j] for j in range(lo, hi)], refs[lo:hi], tgt_vocab, cfg,
                                   device, bar)
            write_shard(shard_path(shard_dir, i), {"shard": i, "start": lo, "end": hi, **record})
            log.info("shard %d/%d: %d sentences in %.1f s", i + 1, n_shards, hi - lo, record["decode_s"])
    paths = [shard_path(shard_dir, i) for i in range(n_shards)]
    if only:  # independent processes never join: which one finishes last is a matter of timing
        log.info("shards %s done; join with a run without --shard once all shards exist", cfg.shard)
        return {}
    if rank != 0:
        return {}
    wait_for(paths)
    return join(cfg, out, paths, split, refs, tgt_vocab, tgt_lang, key, started)


def join(cfg, out: Path, paths: list[Path], split, refs: list[str], tgt_vocab, tgt_lang: str, key: dict,
         started: float) -> dict:
    """Concatenate the shards in corpus order, write the targets, measure them against the references."""
    kd, inter, ranks, decode_s = [], [], [], 0.0
    for i, path in enumerate(paths):
        shard = read_shard(path)
        if shard.get("shard") != i:
            raise SeqkdError(f"{path}: holds shard {shard.get('shard')}, expected {i}; remove it and run again")
        kd += shard["kd"]
        inter += shard.get("inter", [])
        ranks += shard.get("inter_rank", [])
        decode_s += shard["decode_s"]
    if len(kd) != len(refs):
        raise SeqkdError(f"{out}: the shards hold {len(kd)} targets for {len(refs)} sentences; remove "
                         f"{out / 'shards'} and run again")
    kd_text = [tgt_vocab.decode(t) for t in kd]
    save_targets(out, "train.seqkd", kd, kd_text, tgt_lang, len(tgt_vocab))
    limits = np.maximum(np.floor(cfg.max_len_a * split.src.lens + cfg.max_len_b), 1).astype(np.int64)
    stats = {"sentences": len(kd), "decode_s": round(decode_s, 1), "sentences_per_s": round(len(kd) / decode_s, 1),
             "seqkd": {"identical_to_reference": round(float(np.mean([a.strip() == b.strip() for a, b in
                                                                       zip(kd_text, refs)])), 4),
                       **target_counts(kd, kd_text, refs, split.tgt.lens, limits)}}
    if inter:
        inter_text = [tgt_vocab.decode(t) for t in inter]
        save_targets(out, "train.seqinter", inter, inter_text, tgt_lang, len(tgt_vocab))
        stats["seqinter"] = {"nbest": cfg.nbest, "differs_from_1best": int(sum(r != 0 for r in ranks)),
                             **target_counts(inter, inter_text, refs, split.tgt.lens, limits)}
    manifest = io.write_manifest(out, stage="distill", key=key, started=started, config=to_dict(cfg),
                                 teacher=str(cfg.teacher), data_dir=str(cfg.data_dir), **stats)
    log.info("Seq-KD targets: BLEU %.2f against the references, %.1f%% identical, length ratio %.3f, %d empty, "
             "%d cut at the length limit", stats["seqkd"]["bleu"], 100 * stats["seqkd"]["identical_to_reference"],
             stats["seqkd"]["length_ratio"], stats["seqkd"]["empty"], stats["seqkd"]["at_length_limit"])
    if inter:
        log.info("Seq-Inter targets: BLEU %.2f; %d of %d differ from the 1-best", stats["seqinter"]["bleu"],
                 stats["seqinter"]["differs_from_1best"], len(kd))
    return manifest
