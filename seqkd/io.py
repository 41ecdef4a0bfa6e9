"""Files: atomic writes, stage manifests, hashing, and the one error type users see.

Every stage writes each file to a temporary name in the same directory and renames it into place, so a crash leaves
the old file or no file, never half a file; `manifest.json`, written last, marks a stage as done.
"""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator

MANIFEST = "manifest.json"


class SeqkdError(Exception):
    """A problem with the user's input (file, option, data): the CLI prints it and exits with status 2."""


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is renamed to `path`, on error removed.

    >>> with atomic_path("out.txt") as tmp:
    ...     tmp.write_text("done")  # out.txt appears only now, complete
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        # mkstemp makes the file 0600: give it the mode the file has, or a new file's mode under the umask
        os.chmod(tmp, path.stat().st_mode & 0o7777 if path.exists() else 0o666 & ~_umask())
        yield tmp
        with open(tmp, "rb+") as f:  # flush to disk before the rename makes it visible
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> Iterator[Any]:
    """open() that writes to a temporary file and renames it into place when the block succeeds."""
    with atomic_path(path) as tmp:
        if "b" not in mode:
            kwargs.setdefault("encoding", "utf-8")
        with open(tmp, mode, **kwargs) as f:
            yield f


def write_error(e: BaseException, path: str | os.PathLike) -> str:
    """Why writing `path` failed, for a one-line message: the error's first line and the free space left there
    (torch.save reports a full disk as a RuntimeError such as 'unexpected pos 64 vs 0')."""
    first = (getattr(e, "strerror", None) or str(e) or type(e).__name__).splitlines()[0]
    try:
        free = shutil.disk_usage(Path(path).parent).free
    except OSError:
        return first
    return f"{first}; {free / 2**20:.1f} MiB free there"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    with atomic_open(path) as f:
        json.dump(obj, f, indent=1, ensure_ascii=False, sort_keys=False)
        f.write("\n")


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise SeqkdError(f"{path}: file not found") from None
    except json.JSONDecodeError as e:
        raise SeqkdError(f"{path}: not valid JSON ({e})") from None


def sha256_file(path: str | os.PathLike, *, decompress: bool = False) -> str:
    """sha256 of a file's bytes, or of its decompressed text when `decompress` and it ends in .gz."""
    h = hashlib.sha256()
    opener = gzip.open if decompress and str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(path: str | os.PathLike) -> dict:
    """Cheap identity of an input file (size and modification time), for deciding whether a stage is current."""
    st = os.stat(path)
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def config_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def read_manifest(stage_dir: str | os.PathLike) -> dict | None:
    path = Path(stage_dir) / MANIFEST
    if not path.exists():
        return None
    return read_json(path)


def write_manifest(stage_dir: str | os.PathLike, *, stage: str, key: dict, started: float, **fields) -> dict:
    """Write the stage's manifest last: `key` is what decides whether a later run may skip the stage."""
    manifest = {"stage": stage, "key": key, "key_hash": config_hash(key),
                "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "wall_s": round(time.time() - started, 2), **fields}
    write_json(Path(stage_dir) / MANIFEST, manifest)
    return manifest


def changed_settings(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The settings that differ, as 'dotted.key: old -> new' (nested mappings are followed; a setting missing on
    one side is at its default there, see seqkd.config.key_settings).

    >>> changed_settings({"lr": 1.0, "model": {"hidden": 32}}, {"lr": 1.0, "model": {"hidden": 64}})
    ['model.hidden: 32 -> 64']
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in list(old) + [k for k in new if k not in old]:
            out += changed_settings(old.get(k, "(default)"), new.get(k, "(default)"), f"{prefix}{k}.")
        return out
    return [] if old == new else [f"{prefix.rstrip('.')}: {old!r} -> {new!r}"]


def stage_is_done(stage_dir: str | os.PathLike, key: dict, upstream: list = ()) -> bool:
    """Whether the stage in `stage_dir` is finished for `key` = {"settings": ..., "inputs": ...}.

    - finished with this key: True. When a file of `upstream` (the manifests and files this stage reads) is newer
      than the manifest, the upstream stage was redone to the same result: the manifest's time is renewed so that
      make, which compares times, does not call this stage again;
    - finished with other settings: an error naming them, so that finished work is never silently overwritten;
    - finished from other inputs (an upstream stage was redone): its outputs are stale; they are moved aside to
      `<stage_dir>.stale/` (replacing an older one) and the stage is to be redone: False;
    - not finished: False.
    """
    stage_dir = Path(stage_dir)
    manifest = read_manifest(stage_dir)
    if manifest is None:
        return False
    if manifest.get("key_hash") == config_hash(key):
        own = (stage_dir / MANIFEST).stat().st_mtime_ns
        if any(Path(p).exists() and Path(p).stat().st_mtime_ns > own for p in upstream):
            with contextlib.suppress(OSError):  # a read-only run folder: nothing to renew
                os.utime(stage_dir / MANIFEST)
        return True
    old = manifest.get("key", {})
    changed = changed_settings(old.get("settings", {}), key["settings"])
    if changed:
        shown = "; ".join(changed[:4]) + (f"; and {len(changed) - 4} more" if len(changed) > 4 else "")
        raise SeqkdError(f"{stage_dir}: finished with other settings ({shown}); remove that folder to redo it "
                         "with the new settings, or choose another run folder")
    inputs = [k for k in set(old.get("inputs", {})) | set(key["inputs"])
              if old.get("inputs", {}).get(k) != key["inputs"].get(k)]
    move_aside(stage_dir, f"made from other inputs ({', '.join(sorted(inputs)) or 'unknown'} changed)")
    return False


def move_aside(stage_dir: Path, why: str) -> Path:
    """Move a stage's files (all but its log, which stays open and keeps growing) to `<stage_dir>.stale/`."""
    import logging

    stale = stage_dir.with_name(stage_dir.name + ".stale")
    shutil.rmtree(stale, ignore_errors=True)
    stale.mkdir(parents=True)
    if (stage_dir / MANIFEST).exists():
        (stage_dir / MANIFEST).replace(stale / MANIFEST)  # first: an interruption leaves an unfinished stage
    for entry in stage_dir.iterdir():
        if entry.name != "log.txt":
            entry.replace(stale / entry.name)
    logging.getLogger(__name__).warning("%s was %s: its outputs were moved to %s; redoing it", stage_dir, why, stale)
    return stale


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes, first 16 hex digits: how a stage records the upstream files it reads (a corpus
    edited in place, a retrained teacher, remade targets all change it)."""
    return sha256_file(path)[:16]
