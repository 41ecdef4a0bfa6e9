"""Corpus recipes and the downloader, against miniature archives served by a loopback HTTP server (127.0.0.1 only)."""
from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import logging
import random
import re
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

from seqkd import corpora, download
from seqkd.corpora import Remote, SeqkdError, fetch_corpus

SHARED_MULTI30K = Path("/work/shared/data/multi30k")


# ------------------------------------------------------------------------------------------------------ loopback server
class ServerState:
    """What the loopback server serves and how it misbehaves; `log` records every request."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.log: list[dict] = []
        self.cut_after: int | None = None  # send only this many body bytes, then drop the connection...
        self.cuts_left = 0                 # ...for this many responses
        self.honour_range = True           # False: answer 200 with the whole file, as some servers do
        self.status: int | None = None     # answer every request with this error status
        self.url = ""
        self.stop = lambda: None


def make_handler(state: ServerState) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def do_GET(self) -> None:
            entry = {"path": self.path, "range": self.headers.get("Range"), "status": None, "sent": 0}
            state.log.append(entry)
            file = state.root / unquote(urlsplit(self.path).path).lstrip("/")
            if state.status or not file.is_file():
                entry["status"] = state.status or 404
                self.send_error(entry["status"])
                return
            data, start, status = file.read_bytes(), 0, 200
            match = re.fullmatch(r"bytes=(\d+)-", entry["range"] or "")
            if match and state.honour_range:
                start, status = int(match.group(1)), 206
                if start >= len(data):
                    entry["status"] = 416
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
            body = data[start:]
            self.send_response(status)
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_after is not None and state.cuts_left > 0:
                state.cuts_left -= 1
                body = body[:state.cut_after]
                self.close_connection = True  # the server closes the socket: the client sees a short body
            entry["status"], entry["sent"] = status, len(body)  # before writing: the client may check at once
            self.wfile.write(body)
    return Handler


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    state = ServerState(root)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    stopped = []

    def stop() -> None:
        if not stopped:
            stopped.append(True)
            httpd.shutdown()
            httpd.server_close()
            thread.join(5)
    state.url, state.stop = f"http://127.0.0.1:{httpd.server_address[1]}", stop
    yield state
    stop()


@pytest.fixture(autouse=True)
def quick_and_local(monkeypatch):
    """No waiting between retries, short timeouts, and no proxy between us and 127.0.0.1."""
    monkeypatch.setattr(download, "RETRIES", 0)
    monkeypatch.setattr(download, "BACKOFF_S", 0.0)
    monkeypatch.setattr(download, "TIMEOUT_S", 5.0)
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")


# ------------------------------------------------------------------------------------------------------------- helpers
def make_tgz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def lines(path: Path) -> list[str]:
    return path.read_bytes().decode("utf-8").split("\n")[:-1]  # not read_text: it would split on "\r" too


def sgm(sentences: list[str], lang: str) -> bytes:
    segs = "".join(f'<seg id="{i}"> {s} </seg>\n' for i, s in enumerate(sentences, 1))
    return f'<srcset setid="x" srclang="{lang}">\n<doc docid="d1">\n{segs}</doc>\n</srcset>\n'.encode()


def blob_archive(root: Path) -> Path:
    """A .tgz of incompressible bytes, big enough to be cut in the middle."""
    return make_tgz(root / "blob.tgz", {"data/blob.bin": random.Random(0).randbytes(200_000)})


# ------------------------------------------------------------------------------------------------------------ download
def test_interrupted_download_leaves_part_and_resumes_with_range(server, tmp_path):
    archive = blob_archive(server.root)
    size, cut = archive.stat().st_size, archive.stat().st_size // 3
    remote = Remote("blob.tgz", f"{server.url}/blob.tgz", sha256=sha256(archive))
    fetch = corpora._Fetcher(tmp_path / "raw", None, progress=False)
    server.cut_after, server.cuts_left = cut, 1

    with pytest.raises(SeqkdError, match=re.escape(f"{server.url}/blob.tgz")):
        fetch.get(remote)
    assert [p.name for p in (tmp_path / "raw").iterdir()] == ["blob.tgz.part"]
    assert (tmp_path / "raw" / "blob.tgz.part").stat().st_size == cut

    path = fetch.get(remote)
    assert path == tmp_path / "raw" / "blob.tgz" and sha256(path) == remote.sha256
    assert server.log[-1]["range"] == f"bytes={cut}-" and server.log[-1]["status"] == 206
    assert server.log[-1]["sent"] == size - cut < size
    assert not (tmp_path / "raw" / "blob.tgz.part").exists()


def test_dropped_connection_is_retried_within_one_call(server, tmp_path, monkeypatch):
    monkeypatch.setattr(download, "RETRIES", 2)
    archive = blob_archive(server.root)
    server.cut_after, server.cuts_left = 1000, 2
    remote = Remote("blob.tgz", f"{server.url}/blob.tgz", sha256=sha256(archive))
    path = corpora._Fetcher(tmp_path, None, progress=True).get(remote)  # (no bar: stderr is not a terminal)
    assert sha256(path) == remote.sha256
    assert [e["range"] for e in server.log] == [None, "bytes=1000-", "bytes=2000-"]


def test_server_ignoring_range_restarts_the_download(server, tmp_path):
    archive = blob_archive(server.root)
    (tmp_path / "blob.tgz.part").write_bytes(b"stale bytes that are not the file's start")
    server.honour_range = False
    remote = Remote("blob.tgz", f"{server.url}/blob.tgz", sha256=sha256(archive))
    assert sha256(corpora._Fetcher(tmp_path, None, progress=False).get(remote)) == remote.sha256
    assert server.log[-1]["range"] and server.log[-1]["status"] == 200


def test_complete_part_is_not_fetched_again(server, tmp_path):
    archive = blob_archive(server.root)
    (tmp_path / "blob.tgz.part").write_bytes(archive.read_bytes())  # crashed after the transfer, before the rename
    remote = Remote("blob.tgz", f"{server.url}/blob.tgz", sha256=sha256(archive))
    assert sha256(corpora._Fetcher(tmp_path, None, progress=False).get(remote)) == remote.sha256
    assert [e["status"] for e in server.log] == [416]


def test_checksum_mismatch_names_file_and_digests_and_removes_it(server, tmp_path):
    archive = blob_archive(server.root)
    wrong = "0" * 64
    remote = Remote("blob.tgz", f"{server.url}/blob.tgz", sha256=wrong)
    with pytest.raises(SeqkdError) as err:
        corpora._Fetcher(tmp_path / "raw", None, progress=False).get(remote)
    message = str(err.value)
    assert "blob.tgz" in message and f"{server.url}/blob.tgz" in message
    assert wrong in message and sha256(archive) in message
    assert list((tmp_path / "raw").iterdir()) == []


def test_http_errors_name_url_and_status(server, tmp_path):
    fetch = corpora._Fetcher(tmp_path, None, progress=False)
    with pytest.raises(SeqkdError, match=r"missing\.tgz.*404.*/missing\.tgz"):
        fetch.get(Remote("missing.tgz", f"{server.url}/missing.tgz"))
    server.status = 403
    with pytest.raises(SeqkdError, match=re.escape(f"{server.url}/blob.tgz: HTTP 403")):
        fetch.get(Remote("blob.tgz", f"{server.url}/blob.tgz"))
    server.status, download.RETRIES = 503, 1  # (the autouse fixture restores RETRIES)
    with pytest.raises(SeqkdError, match=re.escape(f"{server.url}/blob.tgz: HTTP 503")):
        fetch.get(Remote("blob.tgz", f"{server.url}/blob.tgz"))
    assert [e["status"] for e in server.log[-2:]] == [503, 503], "a 5xx answer is retried"


def test_unknown_checksum_is_trusted_on_first_use_then_enforced(server, tmp_path, caplog):
    archive = blob_archive(server.root)
    remote = Remote("blob.tgz", f"{server.url}/blob.tgz")
    fetch = corpora._Fetcher(tmp_path, None, progress=False)
    with caplog.at_level(logging.WARNING, logger="seqkd.corpora"):
        fetch.get(remote)
    assert "no published checksum" in caplog.text
    assert corpora.read_json(tmp_path / "checksums.json") == {"blob.tgz": sha256(archive)}

    (tmp_path / "blob.tgz").unlink()
    make_tgz(archive, {"data/other.bin": b"changed upstream"})
    with pytest.raises(SeqkdError, match="recorded in .*checksums.json"):
        fetch.get(remote)
    assert not (tmp_path / "blob.tgz").exists()


# -------------------------------------------------------------------------------------------------------------- wmt14
WMT_TRAIN = {"europarl": ("training/europarl-v7.de-en", 7), "commoncrawl": ("commoncrawl.de-en", 5),
             "news-commentary": ("training/news-commentary-v9.de-en", 4)}


def make_wmt14(root: Path, monkeypatch) -> None:
    """Miniature statmt archives with the real member names; the recipe is pointed at their checksums."""
    for key, (prefix, n) in WMT_TRAIN.items():
        en = "".join(f"{key} sentence {i}\n" for i in range(n))
        de = "".join(f"{key} Satz {i}\n" for i in range(n))
        if key == "commoncrawl":  # stray \r and U+2028 inside lines, and a last line without its newline
            en, de = en.replace("sentence 1", "sentence\r1").rstrip("\n"), de.replace("Satz 2", "Satz\u20282")
        archive = make_tgz(root / corpora.WMT14_FILES[key].name, {
            f"{prefix}.en": en.encode(), f"{prefix}.de": de.encode(), f"{prefix}.fr": b"ignored\n"})
        monkeypatch.setitem(corpora.WMT14_FILES, key, dataclasses.replace(corpora.WMT14_FILES[key],
                                                                          sha256=sha256(archive)))
    dev = make_tgz(root / "dev.tgz", {
        "dev/newstest2013-src.en.sgm": sgm(["A & B.", "Two."], "en"),
        "dev/newstest2013-ref.de.sgm": sgm(["A & B.", "Zwei."], "de"),
        "dev/newstest2013.en": b"A & B.\nTwo.\n"})
    test = make_tgz(root / "test-full.tgz", {
        "test-full/newstest2014-deen-src.en.sgm": sgm(["One.", "Two.", "Three."], "en"),
        "test-full/newstest2014-deen-ref.de.sgm": sgm(["Eins.", "Zwei.", "Drei."], "de")})
    for key, archive in (("dev", dev), ("test", test)):
        md5 = hashlib.md5(archive.read_bytes()).hexdigest()
        monkeypatch.setitem(corpora.WMT14_FILES, key, dataclasses.replace(corpora.WMT14_FILES[key], md5=md5))


def check_wmt14(corpus: corpora.Corpus, raw: Path) -> None:
    assert (corpus.name, corpus.src, corpus.tgt) == ("wmt14", "en", "de")
    assert corpus.files["train"] == (raw / "train.en", raw / "train.de")
    counts = {s: [len(lines(p)) for p in pair] for s, pair in corpus.files.items()}
    assert counts == {"train": [16, 16], "valid": [2, 2], "test": [3, 3]}
    assert lines(raw / "valid.en") == ["A & B.", "Two."] and lines(raw / "test.de") == ["Eins.", "Zwei.", "Drei."]
    train_en = (raw / "train.en").read_bytes().split(b"\n")
    assert train_en[8] == b"commoncrawl sentence\r1" and train_en[11] == b"commoncrawl sentence 4"
    assert train_en[12] == b"news-commentary sentence 0"
    assert not list(raw.glob("*.de-en.*")), "extracted parts are removed once concatenated"


def test_wmt14_from_url_mirror_then_offline(server, tmp_path, monkeypatch):
    make_wmt14(server.root, monkeypatch)
    raw = tmp_path / "wmt14"
    check_wmt14(fetch_corpus("wmt14", raw, mirror=server.url + "/", progress=False), raw)
    assert sorted(e["path"] for e in server.log) == sorted(f"/{r.name}" for r in corpora.WMT14_FILES.values())

    server.stop()  # a second call finds everything in place and needs no network
    check_wmt14(fetch_corpus("wmt14", raw, mirror=server.url, progress=False), raw)
    reverse = fetch_corpus("wmt14", raw, src="de", progress=False)
    assert (reverse.src, reverse.tgt, reverse.files["test"]) == ("de", "en", (raw / "test.de", raw / "test.en"))


def test_wmt14_from_directory_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_wmt14(mirror, monkeypatch)
    raw = tmp_path / "wmt14"
    check_wmt14(fetch_corpus("wmt14", raw, mirror=str(mirror), progress=False), raw)
    assert not list(raw.glob("*.tgz")), "a directory mirror is read in place, not copied"


def test_directory_mirror_missing_file_is_named_with_contents(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_wmt14(mirror, monkeypatch)
    (mirror / "test-full.tgz").unlink()
    with pytest.raises(SeqkdError, match=r"no file test-full\.tgz; .*contains: dev\.tgz, training-parallel"):
        fetch_corpus("wmt14", tmp_path / "raw", mirror=str(mirror), progress=False)


def test_archive_without_expected_member(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    make_wmt14(mirror, monkeypatch)
    make_tgz(mirror / "dev.tgz", {"dev/newstest2012-src.en.sgm": b""})
    monkeypatch.setitem(corpora.WMT14_FILES, "dev", dataclasses.replace(corpora.WMT14_FILES["dev"], md5=None))
    with pytest.raises(SeqkdError, match=r"dev\.tgz: no member dev/newstest2013-ref\.de\.sgm"):
        fetch_corpus("wmt14", tmp_path / "raw", mirror=str(mirror), progress=False)


# ------------------------------------------------------------------------------------------------------------ iwslt14
def make_iwslt14(root: Path) -> list[tuple[str, str]]:
    """A miniature de-en.tgz in the WIT3 layout; returns the pairs the cleaning should keep, in order."""
    de, en, kept = [], [], []
    for talk in range(3):
        de += [f"<url>http://www.ted.com/talks/{talk}</url>", "<keywords>talks</keywords>", f"<talkid>{talk}</talkid>",
               f"<title>Titel {talk}</title>", f"<description>Beschreibung {talk}</description>"]
        en += [f"<url>http://www.ted.com/talks/{talk}</url>", "<keywords>talks</keywords>", f"<talkid>{talk}</talkid>",
               f"<title>Title {talk}</title>", f"<description>Description {talk}</description>"]
        kept += [(f"Titel {talk}", f"Title {talk}"), (f"Beschreibung {talk}", f"Description {talk}")]
        for i in range(20):
            pair = (f"Satz {talk}.{i}, bitte.", f"Sentence {talk}.{i}, please.")
            if i == 5:
                pair = ("Danke.", "Thank you.")         # 2 vs 3 Moses tokens: kept (1 vs 2 by whitespace)
            elif i == 6:
                pair = ("Ja.", "Yes, yes, yes, yes.")   # ratio 2 vs 8: dropped
            elif i == 7:
                pair = ("wort " * 176, "word " * 176)   # too long: dropped
            de.append(pair[0])
            en.append(pair[1])
            if i not in (6, 7):
                kept.append(pair)
    members = {"de-en/train.tags.de-en.de": "\n".join(de) + "\n", "de-en/train.tags.de-en.en": "\n".join(en) + "\n"}
    for k, name in enumerate((*corpora._IWSLT14_TEST, "IWSLT14.TED.tst2013")):
        for lang in ("de", "en"):
            segs = [f"{name} {lang} {j}" for j in range(k + 1)]
            members[f"de-en/{name}.de-en.{lang}.xml"] = sgm(segs, lang).decode()
    make_tgz(root / "de-en.tgz", {n: t.encode() for n, t in members.items()})
    return kept


def test_iwslt14_fairseq_split_on_raw_text(tmp_path, caplog):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    kept = make_iwslt14(mirror)
    raw = tmp_path / "iwslt14"
    with caplog.at_level(logging.WARNING, logger="seqkd.corpora"):
        corpus = fetch_corpus("iwslt14", raw, mirror=str(mirror), progress=False)
    assert "de-en.tgz: no published checksum" in caplog.text and (raw / "checksums.json").exists()
    assert (corpus.src, corpus.tgt) == ("de", "en")
    valid = [pair for i, pair in enumerate(kept, 1) if i % 23 == 0]
    train = [pair for i, pair in enumerate(kept, 1) if i % 23 != 0]
    assert list(zip(lines(raw / "valid.de"), lines(raw / "valid.en"))) == valid and len(valid) == 2
    assert list(zip(lines(raw / "train.de"), lines(raw / "train.en"))) == train
    assert lines(raw / "test.en")[:3] == ["IWSLT14.TED.dev2010 en 0", "IWSLT14.TEDX.dev2012 en 0",
                                          "IWSLT14.TEDX.dev2012 en 1"]
    assert len(lines(raw / "test.de")) == 1 + 2 + 3 + 4 + 5  # tst2013 is not part of the test set


# ----------------------------------------------------------------------------------------------------------- multi30k
@pytest.mark.skipif(not SHARED_MULTI30K.is_dir(), reason=f"{SHARED_MULTI30K} (the shared multi30k mirror) is absent")
def test_multi30k_from_shared_mirror(tmp_path):
    raw = tmp_path / "multi30k"
    corpus = fetch_corpus("multi30k", raw, mirror=str(SHARED_MULTI30K), progress=False)
    counts = {s: [len(p.read_bytes().split(b"\n")) - 1 for p in pair] for s, pair in corpus.files.items()}
    assert counts == {"train": [29000, 29000], "valid": [1014, 1014], "test": [1000, 1000]}
    for (split, lang), digest in corpora._MULTI30K_TEXT_SHA256.items():
        assert sha256(raw / f"{split}.{lang}") == digest


@pytest.mark.skipif(not SHARED_MULTI30K.is_dir(), reason=f"{SHARED_MULTI30K} (the shared multi30k mirror) is absent")
def test_multi30k_url_mirror_falls_back_to_split_names(server, tmp_path):
    server.root = SHARED_MULTI30K  # holds valid.en.gz, not upstream's val.en.gz
    corpus = fetch_corpus("multi30k", tmp_path / "m", mirror=server.url, progress=False)
    assert len(lines(corpus.files["valid"][0])) == 1014
    assert [e["status"] for e in server.log if "val" in e["path"]] == [404, 200, 404, 200]


def test_multi30k_text_checksum_mismatch(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with gzip.open(mirror / "train.en.gz", "wb") as f:
        f.write(b"not the real captions\n")
    with pytest.raises(SeqkdError, match="train.en.gz.*sha256 of the decompressed text mismatch.*460a15fb"):
        fetch_corpus("multi30k", tmp_path / "raw", mirror=str(mirror), progress=False)
    assert (mirror / "train.en.gz").exists(), "a mirror's file is never deleted"


# --------------------------------------------------------------------------------------------------------------- text
def test_text_corpus_plain_and_gz(tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    (data / "train.en").write_text("a\nb\nc\n")
    (data / "train.fr").write_text("x\ny\nz")  # no final newline: still 3 lines
    for lang, text in (("en", "v\n"), ("fr", "w\n")):
        with gzip.open(data / f"dev.{lang}.gz", "wt") as f:
            f.write(text)
    raw = tmp_path / "raw"
    corpus = fetch_corpus("text", raw, src="en", tgt="fr", train=str(data / "train"), valid=str(data / "dev"))
    assert set(corpus.files) == {"train", "valid"}
    assert corpus.files["train"] == (data / "train.en", data / "train.fr")  # plain files are used where they are
    assert corpus.files["valid"] == (raw / "valid.en", raw / "valid.fr") and lines(raw / "valid.fr") == ["w"]

    stamp = (raw / "valid.en").stat().st_mtime_ns
    fetch_corpus("text", raw, src="en", tgt="fr", train=str(data / "train"), valid=str(data / "dev"))
    assert (raw / "valid.en").stat().st_mtime_ns == stamp, "an unchanged .gz is not decompressed again"


def test_text_corpus_errors(tmp_path):
    data = tmp_path / "mine"
    data.mkdir()
    (data / "train.en").write_text("a\nb\n")
    (data / "train.de").write_text("x\n")
    with pytest.raises(SeqkdError, match=r"needs option\(s\) tgt, valid .*--tgt --valid.*TGT= VALID="):
        fetch_corpus("text", tmp_path / "raw", src="en", train=str(data / "train"))
    with pytest.raises(SeqkdError, match=r"--valid .*dev\.en.*dev\.en\.gz.*contains: train\.de, train\.en"):
        fetch_corpus("text", tmp_path / "raw", src="en", tgt="de", train=str(data / "train"), valid=str(data / "dev"))
    with pytest.raises(SeqkdError, match=r"train is not parallel: .*train\.en has 2 lines, .*train\.de has 1"):
        fetch_corpus("text", tmp_path / "raw", src="en", tgt="de", train=str(data / "train"),
                     valid=str(data / "train"))


def test_unknown_corpus_and_misplaced_options(tmp_path):
    known = "default, multi30k, iwslt14, wmt14, text"
    with pytest.raises(SeqkdError, match=f"unknown corpus 'wmt15'; known corpora: {known}"):
        fetch_corpus("wmt15", tmp_path)
    with pytest.raises(SeqkdError, match="generated by seqkd.synth"):
        fetch_corpus("default", tmp_path)
    with pytest.raises(SeqkdError, match="train apply only to --corpus text"):
        fetch_corpus("multi30k", tmp_path, train="x")
    with pytest.raises(SeqkdError, match="neither a directory nor an http"):
        fetch_corpus("multi30k", tmp_path, mirror=str(tmp_path / "nowhere"))


def test_moses_like_cleaning_rule():
    assert corpora._keep_pair("Danke.", "Thank you.")
    assert corpora._keep_pair("Es ist gut so - wirklich.", "It's well-known -- really.")
    assert not corpora._keep_pair("Ja.", "Yes, yes, yes, yes.")
    assert not corpora._keep_pair("", "Something.")
    assert not corpora._keep_pair("a " * 176, "b " * 176)
