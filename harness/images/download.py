"""Verified, resumable, cached downloads (images, kernels, checksum files).

A cache entry is either complete and verified or absent: bytes stream into a partial
file and through the digest at the same time, and only a file whose digest matched is
renamed into images/cache/blobs/<algorithm>/<hex> (content-addressed, read-only).
A partial file survives an interrupted download and continues with an HTTP Range
request (If-Range guards against the file having changed); a server that ignores
Range, or a changed validator, starts it over. Connection errors, 5xx and 429 are
retried with backoff; a 404 or a wrong digest never is. One lock per URL: two runs
needing the same file download it once.

Every download is bounded (harness/images/limits.py): by the catalog's size of the
file (or a configurable maximum), an overall deadline and a minimum rate; a checksum
file by a small size. `file://` URLs (a local mirror) are copied the same way, and
also offline: they are not the network.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import requests
import urllib3
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from harness import cancel as cancelling
from harness.cancel import Cancel
from harness.errors import CellSkipped, InfraError
from harness.images.blobs import hash_file, mark_checked, trusted, unchanged
from harness.images.digest import Digest
from harness.images.http_parts import (
    DownloadError,
    Transient,
    check_status,
    content_total,
    meta,
    range_start,
    resumable,
    short,
    validator_of,
)
from harness.images.limits import MAX_ENV, DownloadLimits, Pace

CHUNK = 1 << 20
CONNECT_TIMEOUT_S = 10.0
# Bytes as the server stores them: the digest is of those, and a range of them resumes.
IDENTITY = {"Accept-Encoding": "identity"}

Progress = Callable[[str, int, int | None], None]  # name, bytes so far, total


class DigestMismatch(InfraError):
    reason = "digest-mismatch"


class NotCached(CellSkipped):
    """Offline and not in the cache: the cell is skipped, not failed."""

    reason = "not-cached-offline"


@dataclass(frozen=True)
class Fetched:
    path: Path
    digest: Digest
    verified: bool
    downloaded: int  # bytes received this time (0: from the cache)


class Downloader:
    def __init__(
        self,
        cache: Path,
        offline: bool = False,
        progress: Progress | None = None,
        attempts: int = 4,
        backoff_s: float = 1.0,
        limits: DownloadLimits | None = None,
        cancel: Cancel = None,
    ):
        """`cancel` (harness/cancel.py): once set, a download stops at its next chunk,
        its retry waits and its wait for another process's download of the URL end,
        raising Cancelled; the partial file stays, to resume."""
        self.cache = cache
        self.cancel = cancel
        self.limits = limits or DownloadLimits()
        self.offline = offline
        self.progress = progress or (lambda name, done, total: None)
        self.attempts = attempts
        self.backoff_s = backoff_s
        self._session: requests.Session | None = None
        # Hosts that could not be reached: the other files there fail at once instead
        # of each waiting out its own retries.
        self._unreachable: dict[str, str] = {}

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            self._session = requests.Session()
            self._session.headers["User-Agent"] = "aarch64-boot-harness"
        return self._session

    def blob(self, digest: Digest) -> Path:
        return self.cache / "blobs" / digest.algorithm / digest.hex

    def blob_state(self, digest: Digest) -> str:
        """ "verified" (the file recorded when it was verified), "changed" (it differs
        from that record: the next use hashes it again) or "absent"; no hashing."""
        blob = self.blob(digest)
        if not blob.exists():
            return "absent"
        return "verified" if unchanged(blob) else "changed"

    def fetch(
        self, url: str, digest: Digest | None, name: str = "", size: int | None = None
    ) -> Fetched:
        """The file at `url` (http, https or file), verified against `digest`. With no
        digest (--no-verify) the file is kept under its own sha256 and marked
        unverified. `size` (bytes, from the catalog) bounds the download, else
        DownloadLimits.max_bytes does. Raises NotCached (offline), DownloadError (the
        network, a limit) or DigestMismatch; the cache keeps no part of a refused file
        but a resumable prefix in its partial directory."""
        known = self.known(url)
        had = digest is not None and self.blob(digest).exists()
        if digest is not None and trusted(self.blob(digest), digest):
            return Fetched(self.blob(digest), digest, True, 0)
        if digest is None and known is not None:
            seen = Digest.parse(known["digest"])
            had = self.blob(seen).exists()
            if trusted(self.blob(seen), seen):
                return Fetched(self.blob(seen), seen, bool(known["verified"]), 0)
        if self.offline and not _local(url):
            why = " (the cached copy had changed since it was verified: deleted)" if had else ""
            raise NotCached(f"not cached (offline): {url}{why}")
        with self._locked(url):
            if digest is not None and trusted(self.blob(digest), digest):
                return Fetched(self.blob(digest), digest, True, 0)
            return self._download_verified(url, digest, name or url.rsplit("/", 1)[-1], size)

    def text(self, url: str) -> str:
        """A small file (a checksum list), not cached: its digest is unknown. Read up
        to DownloadLimits.text_max bytes (DownloadError beyond), as UTF-8."""
        limit = self.limits.text_max
        too_big = f"{url}: a checksum file of more than {limit} bytes: refused"
        if path := _local(url):
            try:
                with path.open("rb") as f:
                    data = f.read(limit + 1)
            except OSError as e:
                raise DownloadError(f"{url}: {e.strerror or e}") from e
            if len(data) > limit:
                raise DownloadError(too_big)
            return data.decode("utf-8", "replace")
        if self.offline:
            raise NotCached(f"not cached (offline): {url}")
        pace = Pace(self.limits)
        try:
            for attempt in self._retrying():
                with attempt, self._get(url, IDENTITY) as response:
                    check_status(url, response)
                    if (content_total(response, 0) or 0) > limit:
                        raise DownloadError(too_big)
                    pace.restart_window(0)
                    body = bytearray()
                    while chunk := _read(response, len(body)):
                        body += chunk
                        if len(body) > limit:
                            raise DownloadError(too_big)
                        if why := pace.check(len(body)):
                            raise DownloadError(f"{url}: {why}")
                    return body.decode("utf-8", "replace")
        except (Transient, requests.RequestException) as e:
            raise DownloadError(f"{url}: {short(e)}") from e
        raise AssertionError("unreachable")

    def _get(self, url: str, headers: dict[str, str]) -> requests.Response:
        host = urlsplit(url).netloc
        if host in self._unreachable:
            raise DownloadError(f"{url}: {self._unreachable[host]}")
        timeout = (CONNECT_TIMEOUT_S, self.limits.read_timeout_s)
        try:
            return self.session.get(url, headers=headers, stream=True, timeout=timeout)
        except requests.ConnectionError as e:
            reason = f"cannot reach {host}: {short(e)}"
            if "resolve" in str(e) or "Name or service" in str(e):
                self._unreachable[host] = reason  # no name: retrying cannot help
                raise DownloadError(f"{url}: {reason}") from e
            raise Transient(reason) from e

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(Transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=30),
            sleep=lambda seconds: cancelling.sleep(self.cancel, seconds),
            reraise=True,
        )

    def _download_verified(
        self, url: str, digest: Digest | None, name: str, size: int | None
    ) -> Fetched:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        part = self.cache / "partial" / f"{key}.part"
        part.parent.mkdir(parents=True, exist_ok=True)
        hasher = _hasher(digest)
        received = [0]  # bytes over the wire, all attempts together
        bound = _Bound(
            size if size is not None else self.limits.max_bytes,
            f"the catalog's size of it ({size} bytes)"
            if size is not None
            else f"{self.limits.max_bytes} bytes (${MAX_ENV})",
        )
        try:
            if path := _local(url):
                hasher = _copy(url, path, part, digest, bound, self.cancel)
            else:
                pace = Pace(self.limits)
                for attempt in self._retrying():
                    with attempt:
                        hasher = self._transfer(url, part, digest, name, received, bound, pace)
        except Transient as e:
            kept = " (the partial download is kept for next time)" if part.exists() else ""
            raise DownloadError(f"{url}: {e}{kept}") from e
        except requests.RequestException as e:
            raise DownloadError(f"{url}: {short(e)}") from e
        actual = Digest(hasher.name, hasher.hexdigest())
        if size is not None and part.stat().st_size != size:
            got = part.stat().st_size
            _discard(part)
            raise DigestMismatch(f"{url} gave {got} bytes, the catalog says {size}; deleted")
        if digest is not None and actual != digest:
            _discard(part)
            raise DigestMismatch(f"{url} gave {actual}, expected {digest}; download deleted")
        target = self.blob(actual)
        target.parent.mkdir(parents=True, exist_ok=True)
        part.chmod(0o444)
        os.replace(part, target)
        mark_checked(target)
        meta(part).unlink(missing_ok=True)
        self._remember(url, actual, verified=digest is not None)
        return Fetched(target, actual, digest is not None, received[0])

    def _transfer(
        self,
        url: str,
        part: Path,
        digest: Digest | None,
        name: str,
        received: list[int],
        bound: _Bound,
        pace: Pace,
    ) -> Any:
        """One attempt: resume `part` if the server lets us, else start over."""
        have, validator = resumable(part, url)
        if have > bound.size:
            _discard(part)
            have, validator = 0, ""
        headers = dict(IDENTITY)
        if have and validator:
            headers |= {"Range": f"bytes={have}-", "If-Range": validator}
        pace.restart_window(received[0])
        if why := pace.check(received[0]):  # the deadline, over every attempt
            raise DownloadError(f"{url}: {why}")
        response = self._get(url, headers)
        with response:
            if response.status_code == 416:  # the partial file is no prefix of it
                part.unlink(missing_ok=True)
                raise Transient("HTTP 416: starting over")
            check_status(url, response)
            if response.status_code == 206 and range_start(response) == have:
                hasher = hash_file(part, _hasher(digest).name)
                mode = "ab"
            else:  # 200: the whole file again (Range ignored, or the file changed)
                hasher = _hasher(digest)
                have, mode = 0, "wb"
            total = content_total(response, have)
            if total is not None and total > bound.size:
                _discard(part)
                raise DownloadError(f"{url}: the server offers {total} bytes, more than {bound}")
            meta(part).write_text(json.dumps({"url": url, "validator": validator_of(response)}))
            size = have
            with part.open(mode) as out:
                while chunk := _read(response, size):
                    cancelling.check(self.cancel)
                    if size + len(chunk) > bound.size:
                        _discard(part)
                        raise DownloadError(f"{url}: more than {bound}: stopped and deleted")
                    out.write(chunk)
                    hasher.update(chunk)
                    size += len(chunk)
                    received[0] += len(chunk)
                    self.progress(name, size, total)
                    if why := pace.check(received[0]):
                        kept = " (the partial download is kept for next time)"
                        raise DownloadError(f"{url}: {why}{kept}")
            if total is not None and size < total:
                raise Transient(f"got {size} of {total} bytes")
        return hasher

    def known(self, url: str) -> dict[str, Any] | None:
        """What an earlier fetch of `url` found: its digest, and whether it was verified."""
        path = self.cache / "urls" / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except (OSError, ValueError):
            return None

    def _remember(self, url: str, digest: Digest, verified: bool) -> None:
        path = self.cache / "urls" / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        record = {"url": url, "digest": str(digest), "verified": verified, "at": time.time()}
        partial.write_text(json.dumps(record))
        os.replace(partial, path)

    @contextmanager
    def _locked(self, url: str) -> Iterator[None]:
        locks = self.cache / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{hashlib.sha256(url.encode()).hexdigest()[:32]}.lock", "w") as lock:
            while True:  # polled: another process may hold it for a whole download
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    cancelling.sleep(self.cancel, cancelling.POLL_S)
            yield


@dataclass(frozen=True)
class _Bound:
    size: int  # bytes
    what: str  # where the bound comes from, for the error

    def __str__(self) -> str:
        return self.what


def _read(response: requests.Response, size: int) -> bytes:
    """The next bytes as they arrive (b"" at the end): one read, so that a trickle
    is measured as it trickles instead of waiting for a whole chunk."""
    try:
        data: bytes = response.raw.read1(CHUNK, decode_content=False)
        return data
    except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as e:
        raise Transient(f"connection broke after {size} bytes: {short(e)}") from e


def _local(url: str) -> Path | None:
    """The path of a file:// URL (a local mirror), else None."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    if parts.netloc not in ("", "localhost"):
        raise DownloadError(f"{url}: a file:// URL names no host (file:///path)")
    return Path(unquote(parts.path))


def _copy(
    url: str, source: Path, part: Path, digest: Digest | None, bound: _Bound, cancel: Cancel
) -> Any:
    """A local file into `part` through the digest, bounded like a download."""
    hasher = _hasher(digest)
    size = 0
    try:
        with source.open("rb") as f, part.open("wb") as out:
            while block := f.read(CHUNK):
                cancelling.check(cancel)
                size += len(block)
                if size > bound.size:
                    raise DownloadError(f"{url}: more than {bound}: stopped and deleted")
                out.write(block)
                hasher.update(block)
    except BaseException as e:  # a refused or interrupted copy leaves no part
        _discard(part)
        if isinstance(e, OSError):
            raise DownloadError(f"{url}: {e.strerror or e}") from e
        raise
    return hasher


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    meta(part).unlink(missing_ok=True)


def _hasher(digest: Digest | None) -> Any:
    return hashlib.new(digest.algorithm if digest else "sha256")
