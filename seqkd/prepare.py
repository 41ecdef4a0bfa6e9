"""The data stage: a parallel corpus -> SentencePiece -> memory-mapped integer arrays for train/valid/test.

Output folder (DataConfig.out_dir):
  spm.model (joint) or spm.src.model + spm.tgt.model     SentencePiece models
  vocab.src.txt, vocab.tgt.txt                            pieces used by each side of the training data
  {split}.{src,tgt}.tok.npy, {split}.{src,tgt}.off.npy     flat token ids and offsets (n + 1), memory-mapped
  {split}.{lang}                                          the raw text of the pairs kept, line-aligned with the arrays
  manifest.json                                           settings, inputs, counts and reasons for dropped pairs
Only training pairs are filtered (empty, too long, length ratio); valid and test are kept whole so that scores are
comparable with other tools.
"""
from __future__ import annotations

import gzip
import itertools
import logging
import time
from pathlib import Path

import numpy as np

from seqkd import io
from seqkd.config import DataConfig, key_settings, to_dict
from seqkd.io import SeqkdError
from seqkd.vocab import Vocab, pieces_in_use, train_spm

log = logging.getLogger(__name__)

SPLITS = ("train", "valid", "test")
CHUNK = 100_000  # lines encoded at once: bounds memory on multi-million-line corpora


def read_lines(path: Path) -> list[str]:
    """A text file (optionally .gz) as lines without their newline; errors name the file and line."""
    try:
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise SeqkdError(f"{path}: file not found") from None
    except (OSError, EOFError) as e:
        raise SeqkdError(f"{path}: cannot read ({e})") from None
    if not data.strip():
        raise SeqkdError(f"{path}: the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise SeqkdError(f"{path}:{line}: invalid UTF-8 ({e.reason} at byte {e.start})") from None
    lines = text.split("\n")  # not splitlines(): \x0b, \x1c, \u2028 ... inside a line must not break alignment
    if lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def read_parallel(src_path: Path, tgt_path: Path) -> tuple[list[str], list[str]]:
    src, tgt = read_lines(src_path), read_lines(tgt_path)
    if len(src) != len(tgt):
        raise SeqkdError(f"line counts differ: {src_path} has {len(src)} lines, {tgt_path} has {len(tgt)}")
    return src, tgt


def raw_corpus(cfg: DataConfig) -> tuple[str, str, dict[str, tuple[Path, Path]]]:
    """Generate or fetch the raw corpus; return (src lang, tgt lang, split -> (src file, tgt file))."""
    if cfg.corpus == "default":
        from seqkd import synth

        # the generator's fingerprint is part of the name: a changed generator never reuses an old corpus
        folder = (Path(cfg.raw_dir) / f"default-seed{cfg.seed}-{cfg.n_train}-{cfg.n_valid}-{cfg.n_test}-"
                  f"{synth.fingerprint()}")
        files = {s: (folder / f"{s}.{synth.SRC_LANG}", folder / f"{s}.{synth.TGT_LANG}") for s in SPLITS}
        if not all(p.exists() for pair in files.values() for p in pair):
            log.info("generating the default corpus in %s", folder)
            corpus = synth.generate(cfg.seed, cfg.n_train, cfg.n_valid, cfg.n_test)
            for split, (src_path, tgt_path) in files.items():
                for path, lines in zip((src_path, tgt_path), corpus[split]):
                    with io.atomic_open(path) as f:
                        f.write("".join(line + "\n" for line in lines))
        return synth.SRC_LANG, synth.TGT_LANG, files
    from seqkd import corpora

    corpus = corpora.fetch_corpus(cfg.corpus, Path(cfg.raw_dir) / cfg.corpus, mirror=cfg.mirror, src=cfg.src,
                                  tgt=cfg.tgt, train=cfg.train, valid=cfg.valid, test=cfg.test)
    return corpus.src, corpus.tgt, dict(corpus.files)


def encode_flat(sp, lines: list[str], threads: int) -> tuple[np.ndarray, np.ndarray]:
    """Lines -> (flat spm ids int32, lengths int64), encoded chunk by chunk."""
    flats, lens = [], []
    for start in range(0, len(lines), CHUNK):
        ids = sp.encode(lines[start:start + CHUNK], num_threads=max(1, threads))
        n = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
        flats.append(np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(n.sum())))
        lens.append(n)
    if not flats:
        return np.zeros(0, np.int32), np.zeros(0, np.int64)
    return np.concatenate(flats), np.concatenate(lens)


def keep_mask(src_lens: np.ndarray, tgt_lens: np.ndarray, cfg: DataConfig) -> tuple[np.ndarray, dict]:
    """Which training pairs to keep, and how many were dropped for each reason (first reason wins)."""
    empty = (src_lens == 0) | (tgt_lens == 0)
    too_long = ~empty & ((src_lens > cfg.max_tokens) | (tgt_lens > cfg.max_tokens))
    lo, hi = np.minimum(src_lens, tgt_lens), np.maximum(src_lens, tgt_lens)
    ratio = ~empty & ~too_long & (hi > cfg.max_ratio * np.maximum(lo, 1))
    keep = ~(empty | too_long | ratio)
    return keep, {"empty": int(empty.sum()), "too_long": int(too_long.sum()), "length_ratio": int(ratio.sum())}


def select(flat: np.ndarray, lens: np.ndarray, keep: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Keep the rows of a flat (ids, lengths) pair where `keep` is True."""
    row_of_token = np.repeat(np.arange(len(lens)), lens)
    return flat[keep[row_of_token]], lens[keep]


def save_array(path: Path, array: np.ndarray) -> None:
    with io.atomic_open(path, "wb") as f:
        np.save(f, array)


def save_ids(out: Path, name: str, ids: np.ndarray, lens: np.ndarray, vocab_size: int) -> None:
    """Token ids as uint16 when the vocabulary allows (half the memory and disk), offsets as int64."""
    dtype = np.uint16 if vocab_size < 2 ** 16 else np.int32
    save_array(out / f"{name}.tok.npy", ids.astype(dtype))
    save_array(out / f"{name}.off.npy", np.concatenate([[0], np.cumsum(lens)]).astype(np.int64))


def spm_sample(lines: list[str], n: int) -> list[str]:
    """At most n lines, evenly spaced (deterministic), for training SentencePiece on a large corpus."""
    if len(lines) <= n:
        return lines
    step = len(lines) / n
    return [lines[int(i * step)] for i in range(n)]


def stage_key(cfg: DataConfig, files: dict[str, tuple[Path, Path]]) -> dict:
    """Settings, and the corpus files by content: a file edited in place is noticed even at the same size."""
    inputs = {split: [io.file_digest(p) for p in pair] for split, pair in files.items()}
    return {"settings": key_settings(cfg), "inputs": inputs}


def prepare_data(cfg: DataConfig) -> dict:
    """Run the data stage (or return the manifest of a finished one with the same settings). Stopped by a full disk
    or another write error, it removes the files it wrote: no stage folder is left half-written."""
    out = Path(cfg.out_dir)
    before = set(out.iterdir()) if out.exists() else None
    try:
        return _prepare_data(cfg)
    except OSError as e:
        if before is not None:
            for path in set(out.iterdir()) - before:
                path.unlink(missing_ok=True) if path.is_file() else None
        elif out.exists():
            import shutil

            shutil.rmtree(out, ignore_errors=True)
        why = e.strerror or f"{e}: is the disk full?"
        raise SeqkdError(f"{out}: could not write the data stage ({why}); nothing of it was kept") from None


def _prepare_data(cfg: DataConfig) -> dict:
    started = time.time()
    out = Path(cfg.out_dir)
    src_lang, tgt_lang, files = raw_corpus(cfg)
    key = stage_key(cfg, files)
    if io.stage_is_done(out, key, [p for pair in files.values() for p in pair]):
        log.info("%s is up to date", out)
        return io.read_manifest(out)
    if "train" not in files or "valid" not in files:
        raise SeqkdError(f"corpus '{cfg.corpus}' needs at least train and valid files, got {sorted(files)}")
    texts = {split: read_parallel(*pair) for split, pair in files.items()}
    out.mkdir(parents=True, exist_ok=True)
    protos, spm_files = sentencepiece_models(cfg, *texts["train"], out)
    encoded = encode_splits(protos, texts, cfg.workers)
    keep, dropped = filter_train(encoded, texts, cfg)
    vocabs = {side: Vocab(proto, pieces_in_use(proto, [encoded["train"][side][0]])) for side, proto in protos.items()}
    stats = write_splits(out, encoded, texts, vocabs, {"src": src_lang, "tgt": tgt_lang})
    stats["train"].update(pairs_read=len(keep), dropped=dropped)
    manifest = io.write_manifest(
        out, stage="data", key=key, started=started, corpus=cfg.corpus, src_lang=src_lang, tgt_lang=tgt_lang,
        config=to_dict(cfg), raw_files={s: [str(p) for p in pair] for s, pair in files.items()},
        spm=spm_files, vocab={"src": len(vocabs["src"]), "tgt": len(vocabs["tgt"]),
                              "src_digest": vocabs["src"].digest, "tgt_digest": vocabs["tgt"].digest},
        splits=stats)
    for split, s in stats.items():
        log.info("%s: %d pairs kept of %d (dropped: %s)", split, s["pairs_kept"], s["pairs_read"],
                 ", ".join(f"{k} {v}" for k, v in s["dropped"].items()) or "none")
    return manifest


def sentencepiece_models(cfg: DataConfig, train_src: list[str], train_tgt: list[str],
                         out: Path) -> tuple[dict[str, bytes], dict[str, str]]:
    """The SentencePiece models: an existing one, one joint model, or one per side, trained on (a sample of) the
    training text and written to `out`. Returns each side's model bytes and file name."""
    n = cfg.spm_sentences
    args = dict(vocab_size=cfg.vocab_size, model_type=cfg.spm_type, character_coverage=cfg.character_coverage,
                threads=cfg.workers)
    if cfg.spm_model:
        try:
            proto = Path(cfg.spm_model).read_bytes()
        except FileNotFoundError:
            raise SeqkdError(f"spm_model: {cfg.spm_model}: file not found") from None
        with io.atomic_open(out / "spm.model", "wb") as f:
            f.write(proto)
        return {"src": proto, "tgt": proto}, {"src": "spm.model", "tgt": "spm.model"}
    if cfg.joint_vocab:
        log.info("training a joint SentencePiece %s model (%d pieces)", cfg.spm_type, cfg.vocab_size)
        proto = train_spm(spm_sample(train_src, n) + spm_sample(train_tgt, n), out / "spm.model", **args)
        return {"src": proto, "tgt": proto}, {"src": "spm.model", "tgt": "spm.model"}
    log.info("training SentencePiece %s models (%d pieces each)", cfg.spm_type, cfg.vocab_size)
    protos = {"src": train_spm(spm_sample(train_src, n), out / "spm.src.model", **args),
              "tgt": train_spm(spm_sample(train_tgt, n), out / "spm.tgt.model", **args)}
    return protos, {"src": "spm.src.model", "tgt": "spm.tgt.model"}


def encode_splits(protos: dict[str, bytes], texts: dict, workers: int) -> dict:
    """split -> side -> (flat SentencePiece ids, lengths)."""
    import sentencepiece as spm

    sps = {side: spm.SentencePieceProcessor(model_proto=proto) for side, proto in protos.items()}
    return {split: {side: encode_flat(sps[side], lines, workers) for side, lines in zip(("src", "tgt"), pair)}
            for split, pair in texts.items()}


def filter_train(encoded: dict, texts: dict, cfg: DataConfig) -> tuple[np.ndarray, dict]:
    """Drop the training pairs keep_mask rejects from `encoded` and `texts` (in place); (keep mask, counts)."""
    (s_ids, s_lens), (t_ids, t_lens) = encoded["train"]["src"], encoded["train"]["tgt"]
    keep, dropped = keep_mask(s_lens, t_lens, cfg)
    encoded["train"] = {"src": select(s_ids, s_lens, keep), "tgt": select(t_ids, t_lens, keep)}
    texts["train"] = tuple([line for line, k in zip(lines, keep) if k] for lines in texts["train"])
    return keep, dropped


def write_splits(out: Path, encoded: dict, texts: dict, vocabs: dict, langs: dict) -> dict:
    """Write each split's arrays (our ids) and text, and the vocabularies; per split its counts."""
    stats = {}
    for split, sides in encoded.items():
        for side, (ids, lens) in sides.items():
            save_ids(out, f"{split}.{side}", vocabs[side].id_map[ids], lens, len(vocabs[side]))
            with io.atomic_open(out / f"{split}.{langs[side]}") as f:
                f.write("".join(line + "\n" for line in texts[split][0 if side == "src" else 1]))
        stats[split] = {"pairs_read": int(len(sides["src"][1])), "pairs_kept": int(len(sides["src"][1])),
                        "dropped": {}, "src_tokens": int(sides["src"][1].sum()),
                        "tgt_tokens": int(sides["tgt"][1].sum()),
                        "src_unk": int((vocabs["src"].id_map[sides["src"][0]] == 1).sum()),
                        "tgt_unk": int((vocabs["tgt"].id_map[sides["tgt"][0]] == 1).sum())}
    for side, vocab in vocabs.items():
        vocab.save(out / f"vocab.{side}.txt")
    return stats


def load_vocabs(data_dir: str | Path) -> tuple[Vocab, Vocab]:
    """The (source, target) vocabularies of a finished data stage."""
    data_dir = Path(data_dir)
    manifest = io.read_manifest(data_dir)
    if manifest is None:
        raise SeqkdError(f"{data_dir}: no finished data stage here (run: make data)")
    return (Vocab.load(data_dir / manifest["spm"]["src"], data_dir / "vocab.src.txt"),
            Vocab.load(data_dir / manifest["spm"]["tgt"], data_dir / "vocab.tgt.txt"))
