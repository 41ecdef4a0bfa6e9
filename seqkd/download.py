"""HTTP downloads that survive a bad connection: a partial file (`.part`) resumed with a Range request, retries with
exponential backoff after dropped connections and 5xx answers, a clear error otherwise. The corpus recipes
(seqkd.corpora) say what to fetch and check it; this module only fetches.
"""
from __future__ import annotations

import http.client
import logging
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from seqkd.io import SeqkdError

log = logging.getLogger(__name__)

TIMEOUT_S = 60.0              # socket timeout for connecting and for each read
RETRIES = 4                   # further attempts after a dropped connection or a 5xx answer
BACKOFF_S = 2.0               # wait before retry k is BACKOFF_S * 2**k
CHUNK = 1 << 20
USER_AGENT = "seqkd/0.1 (+urllib)"


class NotFound(Exception):
    """HTTP 404/410: the next candidate name may exist."""


class _Retry(Exception):
    """A transfer that may succeed if tried again (dropped connection, bad resume)."""


def download(url: str, part: Path, progress: bool) -> None:
    """Fetch `url` into `part`, resuming what an earlier attempt left there, retrying with backoff."""
    attempts = RETRIES + 1
    for attempt in range(attempts):
        try:
            fetch_once(url, part, progress)
            return
        except urllib.error.HTTPError as e:
            if e.code in (404, 410):
                raise NotFound(f"HTTP {e.code} {e.reason}") from None
            if e.code < 500 or attempt + 1 == attempts:
                raise SeqkdError(f"{url}: HTTP {e.code} {e.reason}") from None
            problem = f"HTTP {e.code} {e.reason}"
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, _Retry) as e:
            problem = str(getattr(e, "reason", e) or type(e).__name__)
            if attempt + 1 == attempts:
                raise SeqkdError(f"{url}: download failed after {attempts} attempt(s) ({problem}); "
                                 f"{part} keeps what arrived and the next run resumes from there") from None
        delay = BACKOFF_S * 2 ** attempt
        log.warning("%s: %s; retrying in %.0f s (attempt %d of %d)", url, problem, delay, attempt + 2, attempts)
        time.sleep(delay)


def fetch_once(url: str, part: Path, progress: bool) -> None:
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code != 416 or not have:
            raise
        # Nothing left past `have`: the part is complete if the server's total size says so, otherwise start over.
        if (e.headers.get("Content-Range") or "").endswith(f"/{have}"):
            return
        part.unlink()
        raise _Retry("server could not resume the partial file; starting over") from None
    with response:
        if have and response.status != 206:
            log.info("%s: server ignored the Range request; downloading from the start", url)
            have = 0
        elif have and not (response.headers.get("Content-Range") or "").startswith(f"bytes {have}-"):
            part.unlink()
            raise _Retry(f"server resumed at the wrong offset ({response.headers.get('Content-Range')})")
        length = response.headers.get("Content-Length")
        expected = int(length) if length is not None else None
        got = 0
        with open(part, "ab" if have else "wb") as out, tqdm(
                total=None if expected is None else have + expected, initial=have, unit="B", unit_scale=True,
                unit_divisor=1024, desc=part.name[:-5], disable=not (progress and sys.stderr.isatty())) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                got += len(chunk)
                bar.update(len(chunk))
    if expected is not None and got < expected:
        raise _Retry(f"connection closed after {have + got:,} of {have + expected:,} bytes")
