"""Corpus recipes: fetch parallel text (or read it from a mirror), verify it and leave plain text files in `raw_dir`.

`fetch_corpus(name, raw_dir, ...)` returns a `Corpus` whose files are `raw_dir/{split}.{lang}`: plain UTF-8, one
sentence per line, text verbatim (no tokenization, no lowercasing; SentencePiece runs on raw text later). A recipe
writes `corpus.json` last; a later call that finds it with its files returns at once, without touching the network.

Lines end at "\\n" only: read the files with `newline="\\n"` (or in binary). Web-crawled text may hold a stray "\\r"
or U+2028 inside a line, and universal-newline reading or `str.splitlines()` would split there and break alignment.

Downloads use urllib: into `<name>.part`, resumed with an HTTP Range request, retried with backoff, checked against a
hard-coded checksum (sources in the comments below) and only then renamed into place. A file with no published
checksum is trusted on first use: the sha256 of its first complete download goes to `raw_dir/checksums.json`.
"""
from __future__ import annotations

import gzip
import hashlib
import logging
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Callable, Iterable

from seqkd.download import NotFound, download
from seqkd.io import SeqkdError, atomic_open, fingerprint, read_json, write_json

log = logging.getLogger(__name__)

CORPORA: tuple[str, ...] = ("default", "multi30k", "iwslt14", "wmt14", "text")
SPLITS = ("train", "valid", "test")
MANIFEST = "corpus.json"      # written last by a downloaded corpus's recipe
TOFU_FILE = "checksums.json"  # sha256 of files with no published checksum, recorded on first download
CHUNK = 1 << 20


@dataclass(frozen=True)
class Corpus:
    """A parallel corpus on disk: split ("train", "valid", "test") -> (source text file, target text file)."""

    name: str
    src: str
    tgt: str
    files: dict[str, tuple[Path, Path]]


@dataclass(frozen=True)
class Remote:
    """One file a recipe needs, and what it must hash to."""

    name: str                       # file name in raw_dir, and the first name looked up in a mirror
    url: str                        # canonical address
    sha256: str | None = None       # of the file's bytes
    md5: str | None = None          # of the file's bytes, where only an md5 is published
    text_sha256: str | None = None  # of the gunzipped content (holds for upstream and recompressed copies alike)
    aliases: tuple[str, ...] = ()   # other names a mirror may use

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


# --- multi30k, task 1 (En->De): upstream repository at a fixed commit; the shared mirror names files by split.
_MULTI30K_URL = ("https://raw.githubusercontent.com/multi30k/dataset/"
                 "a3d2e0d26b56f3846f66a952536ffed4e401d05a/data/task1/raw/")
_MULTI30K_UPSTREAM = {"train": "train", "valid": "val", "test": "test_2016_flickr"}
# sha256 of the decompressed text, from /work/shared/data/multi30k/SOURCE.md (checked there against the upstream files).
_MULTI30K_TEXT_SHA256 = {
    ("train", "en"): "460a15fbd157e34a7a9957ee388c1ca247fe47af3ef25fb50442af6c274e0fc6",
    ("train", "de"): "2c2b73fd2b548fbcde3a875e0a78d6ee94d498bfdee6bd3eae3945779e9ddf72",
    ("valid", "en"): "1f2a23d992769b5b3d209b0a10dd0b77c08cceb1f20dfb97ed0aafa49d107227",
    ("valid", "de"): "660e09eb7e1da2f856ea13ee5ad3cf6d36b3d5b0b733c857e94c5747a3dfc660",
    ("test", "en"): "399a4382932c1aadd3ceb9bef1008d388a64c76d4ae4e9d4728c6f4301cac182",
    ("test", "de"): "4be6b5b3236b79c25475c6bb829800a7ce559e9ba7a1f6c2394fe4d40be46d16",
}
MULTI30K_FILES = {
    key: Remote(f"{_MULTI30K_UPSTREAM[key[0]]}.{key[1]}.gz", f"{_MULTI30K_URL}{_MULTI30K_UPSTREAM[key[0]]}.{key[1]}.gz",
                text_sha256=digest, aliases=() if key[0] == "train" else (f"{key[0]}.{key[1]}.gz",))
    for key, digest in _MULTI30K_TEXT_SHA256.items()}

# --- iwslt14 (De->En): the archive fairseq's examples/translation/prepare-iwslt14.sh downloads (its current URL; older
# versions used wit3.fbk.eu). No checksum with a traceable source was found: md5 10936dfdf616504ddbd844e91b94ef4a
# appears in a single third-party script that only warns on a mismatch, so it is not enforced; trusted on first use.
IWSLT14_FILE = Remote("de-en.tgz", "https://dl.fbaipublicfiles.com/fairseq/data/iwslt14/de-en.tgz")
_IWSLT14_TEST = ("IWSLT14.TED.dev2010", "IWSLT14.TEDX.dev2012", "IWSLT14.TED.tst2010", "IWSLT14.TED.tst2011",
                 "IWSLT14.TED.tst2012")  # concatenated in this order, as fairseq does
_IWSLT_DROP = ("<url>", "<talkid>", "<keywords>")           # fairseq: grep -v on these talk-metadata lines
_IWSLT_UNTAG = re.compile(r"</?(?:title|description)>")   # fairseq: sed removes these tags, keeps their text

# --- wmt14 (En->De): Europarl v7 + Common Crawl + News Commentary v9 (fairseq prepare-wmt14en2de.sh --icml17, Luong
# et al. 2015), newstest2013 (valid), newstest2014 full 3003 sentences (test).
WMT14_FILES = {
    # sha256: tensorflow/datasets tensorflow_datasets/url_checksums/wmt14_translate.txt (sizes 657632379, 918311367,
    # 80418416 bytes); europarl and commoncrawl also in stagedml/stagedml src/stagedml/stages/fetchwmt.py.
    "europarl": Remote("training-parallel-europarl-v7.tgz",
                       "https://www.statmt.org/wmt13/training-parallel-europarl-v7.tgz",
                       sha256="0224c7c710c8a063dfd893b0cc0830202d61f4c75c17eb8e31836103d27d96e7"),
    "commoncrawl": Remote("training-parallel-commoncrawl.tgz",
                          "https://www.statmt.org/wmt13/training-parallel-commoncrawl.tgz",
                          sha256="c7a74e2ea01ac6c920123108627e35278d4ccb5701e15428ffa34de86fa3a9e5"),
    "news-commentary": Remote("training-parallel-nc-v9.tgz", "https://www.statmt.org/wmt14/training-parallel-nc-v9.tgz",
                              sha256="cb8953f292298e6877ae433c98912b927cb0766b303f4540512ddd286c748485"),
    # md5 only: awslabs/sockeye contrib/autopilot/tasks.py, RAW_FILES["wmt14_dev"].
    "dev": Remote("dev.tgz", "https://www.statmt.org/wmt14/dev.tgz", md5="88ba3fc60b2278d59277122e1c7dd6e7"),
    # md5 only: sacrebleu 2.6.0 sacrebleu/dataset/__init__.py, DATASETS["wmt14/full"].
    "test": Remote("test-full.tgz", "https://www.statmt.org/wmt14/test-full.tgz",
                   md5="a8cd784e006feb32ac6f3d9ec7eb389a"),
}
_WMT14_TRAIN = (("europarl", "training/europarl-v7.de-en"), ("commoncrawl", "commoncrawl.de-en"),
                ("news-commentary", "training/news-commentary-v9.de-en"))  # member prefixes, concatenated in this order
_WMT14_EVAL = {"valid": ("dev", "dev/newstest2013-src.en.sgm", "dev/newstest2013-ref.de.sgm"),
               "test": ("test", "test-full/newstest2014-deen-src.en.sgm", "test-full/newstest2014-deen-ref.de.sgm")}

_SEG = re.compile(r"<seg[^>]*>(.*?)</seg>")
# Approximates a Moses token (tokenizer.perl without -a) for fairseq's length/ratio cleaning: punctuation marks are
# tokens, hyphenated words, numbers like 1,000.5 and "..." stay whole, an apostrophe starts a token ("don't" -> don 't).
_TOKEN = re.compile(r"'?\w+(?:[-.,]\w+)*|\.{2,}|-+|[^\w\s]")


# ---------------------------------------------------------------------------------------------------------- entry point
def fetch_corpus(name: str, raw_dir: Path, *, mirror: str | None = None, src: str | None = None,
                 tgt: str | None = None, train: str | None = None, valid: str | None = None, test: str | None = None,
                 progress: bool = True) -> Corpus:
    """Make corpus `name` available as plain text files and describe them.

    `mirror` (a directory or an http(s):// URL base) replaces the canonical addresses; files are looked up by name.
    For `name="text"`, `src`/`tgt` are language codes and `train`/`valid`/`test` path prefixes of the user's files
    (`{prefix}.{lang}` or `{prefix}.{lang}.gz`). For a downloaded corpus, `src`/`tgt` may reverse its direction.
    """
    raw_dir, mirror = Path(raw_dir), (None if mirror is None else str(mirror))
    if name == "text":
        return _text_corpus(raw_dir, src, tgt, {"train": train, "valid": valid, "test": test})
    if name == "default":
        raise SeqkdError("corpus 'default' is generated by seqkd.synth, not fetched")
    if name not in _RECIPES:
        raise SeqkdError(f"unknown corpus {name!r}; known corpora: {', '.join(CORPORA)}")
    given = [opt for opt, value in (("train", train), ("valid", valid), ("test", test)) if value]
    if given:
        raise SeqkdError(f"option(s) {', '.join(given)} apply only to --corpus text, not to {name!r}")
    corpus = _finished(name, raw_dir) or _build(name, raw_dir, mirror, progress)
    return _orient(corpus, src, tgt)


def _finished(name: str, raw_dir: Path) -> Corpus | None:
    """The corpus a previous call left in raw_dir, if its manifest and all its files are there."""
    path = raw_dir / MANIFEST
    if not path.exists():
        return None
    manifest = read_json(path)
    if manifest.get("corpus") != name:
        raise SeqkdError(f"{raw_dir} holds corpus {manifest.get('corpus')!r}, not {name!r}: choose another folder")
    files = {s: (raw_dir / a, raw_dir / b) for s, (a, b) in manifest["files"].items()}
    if not all(p.exists() for pair in files.values() for p in pair):
        return None
    return Corpus(name, manifest["src"], manifest["tgt"], files)


def _build(name: str, raw_dir: Path, mirror: str | None, progress: bool) -> Corpus:
    """Run a recipe: it produces whichever split files are missing; then check them and write the manifest."""
    src, tgt, recipe = _RECIPES[name]
    raw_dir.mkdir(parents=True, exist_ok=True)
    files = {s: (raw_dir / f"{s}.{src}", raw_dir / f"{s}.{tgt}") for s in SPLITS}
    recipe(_Fetcher(raw_dir, mirror, progress), files)
    lines = _check_parallel(files)
    write_json(raw_dir / MANIFEST, {"corpus": name, "src": src, "tgt": tgt, "lines": lines, "mirror": mirror,
                                    "files": {s: [a.name, b.name] for s, (a, b) in files.items()}})
    log.info("corpus %s ready in %s: %s", name, raw_dir, ", ".join(f"{s} {n:,}" for s, n in lines.items()))
    return Corpus(name, src, tgt, files)


def _orient(corpus: Corpus, src: str | None, tgt: str | None) -> Corpus:
    """The corpus in the direction asked for: as built, or reversed (src/tgt swapped)."""
    if src is None and tgt is None:
        return corpus
    langs = (corpus.src, corpus.tgt)
    for option, lang in (("src", src), ("tgt", tgt)):
        if lang is not None and lang not in langs:
            raise SeqkdError(f"--{option} {lang}: corpus {corpus.name!r} has languages {' and '.join(langs)}")
    other = {corpus.src: corpus.tgt, corpus.tgt: corpus.src}
    src = src or other[tgt]  # type: ignore[index]
    tgt = tgt or other[src]
    if src == tgt:
        raise SeqkdError(f"--src and --tgt are both {src!r}")
    if (src, tgt) == langs:
        return corpus
    return Corpus(corpus.name, src, tgt, {s: (b, a) for s, (a, b) in corpus.files.items()})


# -------------------------------------------------------------------------------------------------------------- recipes
def _multi30k(fetch: _Fetcher, files: dict[str, tuple[Path, Path]]) -> None:
    """Each split is one .gz per language upstream: decompress it."""
    for split, pair in files.items():
        for lang, out in zip(("en", "de"), pair):
            if not out.exists():
                _gunzip(fetch.get(MULTI30K_FILES[split, lang]), out)


def _iwslt14(fetch: _Fetcher, files: dict[str, tuple[Path, Path]]) -> None:
    """fairseq's split on raw text: cleaned train.tags minus every 23rd pair (-> valid); test = 5 dev/tst sets.

    Talk metadata follows prepare-iwslt14.sh exactly: lines holding <url>, <talkid> or <keywords> are dropped, while
    <title> and <description> lose their tags but keep their text as a sentence pair (that keeps fairseq's line order,
    on which the every-23rd-line split depends). No Moses tokenization or lowercasing; cleaning uses _keep_pair.
    """
    if all(p.exists() for s in SPLITS for p in files[s]):
        return
    archive = fetch.get(IWSLT14_FILE)
    tags = {lang: f"de-en/train.tags.de-en.{lang}" for lang in ("de", "en")}
    xml = {(t, lang): f"de-en/{t}.de-en.{lang}.xml" for t in _IWSLT14_TEST for lang in ("de", "en")}
    data = _read_members(archive, [*tags.values(), *xml.values()])
    talks = {lang: [_IWSLT_UNTAG.sub("", line) for line in _lines(data[member], member)
                    if not any(tag in line for tag in _IWSLT_DROP)] for lang, member in tags.items()}
    _same_length(talks["de"], talks["en"], f"{archive}: {tags['de']} and {tags['en']}")
    kept = [pair for pair in zip(talks["de"], talks["en"]) if _keep_pair(*pair)]
    log.info("iwslt14: kept %d of %d training pairs after length/ratio cleaning", len(kept), len(talks["de"]))
    valid = [pair for i, pair in enumerate(kept, 1) if i % 23 == 0]
    train = [pair for i, pair in enumerate(kept, 1) if i % 23 != 0]
    test: list[tuple[str, str]] = []
    for t in _IWSLT14_TEST:
        de, en = (_seg_text(data[xml[t, lang]], xml[t, lang]) for lang in ("de", "en"))
        _same_length(de, en, f"{archive}: {xml[t, 'de']} and {xml[t, 'en']}")
        test.extend(zip(de, en))
    for split, pairs in (("train", train), ("valid", valid), ("test", test)):
        for side, out in enumerate(files[split]):
            _write_lines(out, (pair[side] for pair in pairs))


def _wmt14(fetch: _Fetcher, files: dict[str, tuple[Path, Path]]) -> None:
    """train = Europarl v7 + Common Crawl + News Commentary v9 (de-en members, concatenated); valid/test from .sgm."""
    if not all(p.exists() for p in files["train"]):
        parts: list[tuple[Path, Path]] = []
        for key, prefix in _WMT14_TRAIN:  # stream each archive once, keeping only its de-en members
            pair = (fetch.raw_dir / f"{Path(prefix).name}.en", fetch.raw_dir / f"{Path(prefix).name}.de")
            if not all(p.exists() for p in pair):
                _extract_members(fetch.get(WMT14_FILES[key]), {f"{prefix}.en": pair[0], f"{prefix}.de": pair[1]})
            parts.append(pair)
        for side, out in enumerate(files["train"]):
            _concatenate([pair[side] for pair in parts], out)
        _check_parallel({"train": files["train"]})
        for pair in parts:  # the concatenation holds them now; don't keep 1.4 GB twice
            for p in pair:
                p.unlink()
    for split, (key, src_member, tgt_member) in _WMT14_EVAL.items():
        if not all(p.exists() for p in files[split]):
            data = _read_members(fetch.get(WMT14_FILES[key]), [src_member, tgt_member])
            for member, out in zip((src_member, tgt_member), files[split]):
                _write_lines(out, _seg_text(data[member], member))


_RECIPES: dict[str, tuple[str, str, Callable[..., None]]] = {
    "multi30k": ("en", "de", _multi30k), "iwslt14": ("de", "en", _iwslt14), "wmt14": ("en", "de", _wmt14)}


def _text_corpus(raw_dir: Path, src: str | None, tgt: str | None, prefixes: dict[str, str | None]) -> Corpus:
    """The user's own files: plain ones are used where they are, .gz ones are decompressed into raw_dir once."""
    missing = [opt for opt, value in (("src", src), ("tgt", tgt), ("train", prefixes["train"]),
                                      ("valid", prefixes["valid"])) if not value]
    if missing:
        flags, make_vars = " ".join(f"--{m}" for m in missing), " ".join(f"{m.upper()}=" for m in missing)
        raise SeqkdError(f"corpus 'text' needs option(s) {', '.join(missing)} ({flags}; for make: {make_vars})")
    if src == tgt:
        raise SeqkdError(f"corpus 'text': --src and --tgt are both {src!r}")
    files = {split: (_user_file(prefix, src, split, raw_dir), _user_file(prefix, tgt, split, raw_dir))  # type: ignore
             for split, prefix in prefixes.items() if prefix}
    _check_parallel(files)
    return Corpus("text", src, tgt, files)  # type: ignore[arg-type]


def _user_file(prefix: str, lang: str, split: str, raw_dir: Path) -> Path:
    plain, packed = Path(f"{prefix}.{lang}"), Path(f"{prefix}.{lang}.gz")
    if plain.is_file():
        return plain.resolve()
    if not packed.is_file():
        raise SeqkdError(f"--{split} {prefix}: neither {plain} nor {packed} exists; {_listing(plain.parent)}")
    out, record = raw_dir / f"{split}.{lang}", raw_dir / "sources.json"
    sources = read_json(record) if record.exists() else {}
    stamp = fingerprint(packed.resolve())
    if not out.exists() or sources.get(out.name) != stamp:  # decompress again only when the .gz changed
        _gunzip(packed, out)
        write_json(record, {**sources, out.name: stamp})
    return out


# ------------------------------------------------------------------------------------------------- verified file access
@dataclass
class _Fetcher:
    """Gets a verified copy of a Remote: downloaded once into raw_dir, or read in place from a mirror directory."""

    raw_dir: Path
    mirror: str | None
    progress: bool

    def __post_init__(self) -> None:
        if self.mirror and not _is_url(self.mirror) and not Path(self.mirror).is_dir():
            raise SeqkdError(f"--mirror {self.mirror}: neither a directory nor an http(s):// URL")

    def get(self, remote: Remote) -> Path:
        if self.mirror and not _is_url(self.mirror):
            return self._from_directory(Path(self.mirror), remote)
        dest = self.raw_dir / remote.name
        if dest.exists():  # it was verified before it was renamed into place
            return dest
        part = dest.with_name(dest.name + ".part")
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        urls = [f"{self.mirror.rstrip('/')}/{n}" for n in remote.names] if self.mirror else [remote.url]
        for url in urls:
            log.info("downloading %s -> %s", url, dest)
            try:
                download(url, part, self.progress)
            except NotFound as e:
                log.info("%s: %s", url, e)
                continue
            self._verify(part, remote, url, owned=True)
            part.replace(dest)
            return dest
        raise SeqkdError(f"{remote.name}: not found (HTTP 404) at {' nor '.join(urls)}")

    def _from_directory(self, root: Path, remote: Remote) -> Path:
        for name in remote.names:
            if (root / name).is_file():
                self._verify(root / name, remote, str(root / name), owned=False)
                return root / name
        raise SeqkdError(f"mirror {root}: no file {' or '.join(remote.names)}; {_listing(root)}")

    def _verify(self, path: Path, remote: Remote, source: str, *, owned: bool) -> None:
        """Check `path` against the known digests, or trust it on first use; a bad download is removed."""
        sha256, md5 = _digests(path)
        checks = [(kind, want, got) for kind, want, got in (
            ("sha256", remote.sha256, sha256), ("md5", remote.md5, md5),
            ("sha256 of the decompressed text", remote.text_sha256, remote.text_sha256 and _text_sha256(path)))
            if want]
        if not checks:
            record = self.raw_dir / TOFU_FILE
            known = read_json(record) if record.exists() else {}
            if remote.name not in known:
                log.warning("%s: no published checksum; trusting this first copy (sha256 %s, recorded in %s)",
                            remote.name, sha256, record)
                write_json(record, {**known, remote.name: sha256})
                return
            checks = [(f"sha256 (recorded in {record} on first download)", known[remote.name], sha256)]
        for kind, want, got in checks:
            if want != got:
                if owned:
                    path.unlink()
                raise SeqkdError(f"{remote.name} from {source}: {kind} mismatch: expected {want}, got {got}. "
                                 + ("The download was removed; run again to fetch it afresh." if owned else
                                    "The mirror's file was left as it is."))


def _is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def _listing(folder: Path, limit: int = 30) -> str:
    """What a folder contains, for error messages."""
    if not folder.is_dir():
        return f"folder {folder} does not exist"
    names = sorted(p.name for p in folder.iterdir())
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return f"{folder} contains: {', '.join(names[:limit]) or 'nothing'}{more}"


def _digests(path: Path) -> tuple[str, str]:
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            sha256.update(block)
            md5.update(block)
    return sha256.hexdigest(), md5.hexdigest()


def _text_sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            for block in iter(lambda: f.read(CHUNK), b""):
                h.update(block)
    except (OSError, EOFError, zlib.error) as e:  # not gzip data (an HTML error page, say), or cut short
        return f"(unreadable: {e})"
    return h.hexdigest()


# ------------------------------------------------------------------------------------------------------------ downloads
# ---------------------------------------------------------------------------------------------------- archives and text
def _scan_tar(archive: Path, wanted: set[str], handle: Callable[[str, IO[bytes]], None]) -> None:
    """Stream through a tar archive once, passing each wanted member to `handle`; all must be present."""
    found: set[str] = set()
    names: list[str] = []
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                name = member.name.removeprefix("./")  # archives made with `tar czf x.tgz .` prefix every name
                names.append(name)
                if name in wanted and member.isfile():
                    handle(name, tar.extractfile(member))  # type: ignore[arg-type]
                    found.add(name)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise SeqkdError(f"{archive}: not a readable tar archive ({e}); remove it and run again") from None
    if wanted - found:
        similar = [n for n in names if "de-en" in n][:12] or names[:12]
        raise SeqkdError(f"{archive}: no member {', '.join(sorted(wanted - found))}; it has e.g. {', '.join(similar)}")


def _extract_members(archive: Path, destinations: dict[str, Path]) -> None:
    """Copy the named members of an archive to files (each written atomically)."""
    log.info("extracting %s from %s", ", ".join(destinations), archive.name)

    def copy(name: str, stream: IO[bytes]) -> None:
        with atomic_open(destinations[name], "wb") as out:
            shutil.copyfileobj(stream, out, CHUNK)
    _scan_tar(archive, set(destinations), copy)


def _read_members(archive: Path, names: list[str]) -> dict[str, bytes]:
    """The named (small) members of an archive, in memory."""
    data: dict[str, bytes] = {}
    _scan_tar(archive, set(names), lambda name, stream: data.__setitem__(name, stream.read()))
    return data


def _lines(data: bytes, origin: str) -> list[str]:
    """UTF-8 text split on "\\n" only (str.splitlines would also split on \\r, U+2028 and friends)."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SeqkdError(f"{origin}: not UTF-8 text ({e})") from None
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def _seg_text(data: bytes, origin: str) -> list[str]:
    """The text of each <seg> of a WMT .sgm or IWSLT .xml file, in order, without surrounding whitespace. Entities
    are left as they are, as fairseq and sacrebleu do."""
    return [m.group(1).strip(" \t\r\n") for line in _lines(data, origin) if (m := _SEG.search(line))]


def _keep_pair(src: str, tgt: str, max_tokens: int = 175, ratio: float = 1.5) -> bool:
    """fairseq's clean-corpus-n.perl rule (1..175 tokens a side, length ratio <= 1.5), on approximate Moses tokens."""
    a, b = len(_TOKEN.findall(src)), len(_TOKEN.findall(tgt))
    return 1 <= a <= max_tokens and 1 <= b <= max_tokens and a <= ratio * b and b <= ratio * a


def _same_length(a: list[str], b: list[str], what: str) -> None:
    if len(a) != len(b):
        raise SeqkdError(f"{what} are not parallel: {len(a)} vs {len(b)} lines")


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with atomic_open(path, "w", newline="\n") as f:
        for line in lines:
            f.write(line + "\n")


def _gunzip(source: Path, out: Path) -> None:
    log.info("decompressing %s -> %s", source, out)
    try:
        with gzip.open(source, "rb") as f, atomic_open(out, "wb") as g:
            shutil.copyfileobj(f, g, CHUNK)
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:
        raise SeqkdError(f"{source}: not a readable .gz file ({e})") from None


def _concatenate(parts: list[Path], out: Path) -> None:
    """Byte-for-byte concatenation, adding a final newline to any part that lacks one so lines stay aligned."""
    with atomic_open(out, "wb") as g:
        for part in parts:
            last = b"\n"
            with open(part, "rb") as f:
                for block in iter(lambda: f.read(CHUNK), b""):
                    g.write(block)
                    last = block[-1:]
            if last != b"\n":
                g.write(b"\n")


def _count_lines(path: Path) -> int:
    """Lines in a file, counting a last line that lacks its newline."""
    count, last = 0, b"\n"
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            count += block.count(b"\n")
            last = block[-1:]
    return count + (last != b"\n")


def _check_parallel(files: dict[str, tuple[Path, Path]]) -> dict[str, int]:
    """Line counts per split; both sides must agree and train must not be empty."""
    counts = {}
    for split, (a, b) in files.items():
        n, m = _count_lines(a), _count_lines(b)
        if n != m:
            raise SeqkdError(f"{split} is not parallel: {a} has {n:,} lines, {b} has {m:,}")
        if split == "train" and n == 0:
            raise SeqkdError(f"{a}: no training sentences")
        counts[split] = n
    return counts
