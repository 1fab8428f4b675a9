"""Verified, resumable, cached downloads (images, kernels, checksum files).

A cache entry is either complete and verified or absent: bytes stream into a partial
file and through the digest at the same time, and only a file whose digest matched is
renamed into images/cache/blobs/<algorithm>/<hex> (content-addressed, read-only).
A partial file survives an interrupted download and continues with an HTTP Range
request (If-Range guards against the file having changed); a server that ignores
Range, or a changed validator, starts it over. Connection errors, 5xx and 429 are
retried with backoff; a 404 or a wrong digest never is. One lock per URL: two runs
needing the same file download it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from harness.errors import CellSkipped, InfraError
from harness.images.digest import Digest

CHUNK = 1 << 20
TIMEOUT = (10.0, 60.0)  # connect, read (seconds)

Progress = Callable[[str, int, int | None], None]  # name, bytes so far, total


class DownloadError(InfraError):
    reason = "download-failed"


class DigestMismatch(InfraError):
    reason = "digest-mismatch"


class NotCached(CellSkipped):
    """Offline and not in the cache: the cell is skipped, not failed."""

    reason = "not-cached-offline"


class _Transient(Exception):
    """Worth another try: the connection broke, or the server said 5xx/429."""


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
    ):
        self.cache = cache
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

    def fetch(self, url: str, digest: Digest | None, name: str = "") -> Fetched:
        """The file at `url`, verified against `digest`. With no digest (--no-verify)
        the file is kept under its own sha256 and marked unverified."""
        known = self.known(url)
        if digest is not None and self.blob(digest).exists():
            return Fetched(self.blob(digest), digest, True, 0)
        if digest is None and known is not None:
            seen = Digest.parse(known["digest"])
            if self.blob(seen).exists():
                return Fetched(self.blob(seen), seen, bool(known["verified"]), 0)
        if self.offline:
            raise NotCached(f"not cached (offline): {url}")
        with self._locked(url):
            if digest is not None and self.blob(digest).exists():
                return Fetched(self.blob(digest), digest, True, 0)
            return self._download_verified(url, digest, name or url.rsplit("/", 1)[-1])

    def text(self, url: str) -> str:
        """A small file (a checksum list), not cached: its digest is unknown."""
        if self.offline:
            raise NotCached(f"not cached (offline): {url}")
        try:
            for attempt in self._retrying():
                with attempt:
                    response = self._get(url, {}, stream=False)
                    _check_status(url, response)
                    return response.text
        except (_Transient, requests.RequestException) as e:
            raise DownloadError(f"{url}: {_short(e)}") from e
        raise AssertionError("unreachable")

    def _get(self, url: str, headers: dict[str, str], stream: bool = True) -> requests.Response:
        host = urlsplit(url).netloc
        if host in self._unreachable:
            raise DownloadError(f"{url}: {self._unreachable[host]}")
        try:
            return self.session.get(url, headers=headers, stream=stream, timeout=TIMEOUT)
        except requests.ConnectionError as e:
            reason = f"cannot reach {host}: {_short(e)}"
            if "resolve" in str(e) or "Name or service" in str(e):
                self._unreachable[host] = reason  # no name: retrying cannot help
                raise DownloadError(f"{url}: {reason}") from e
            raise _Transient(reason) from e

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(_Transient),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=30),
            reraise=True,
        )

    def _download_verified(self, url: str, digest: Digest | None, name: str) -> Fetched:
        key = hashlib.sha256(url.encode()).hexdigest()[:32]
        part = self.cache / "partial" / f"{key}.part"
        part.parent.mkdir(parents=True, exist_ok=True)
        hasher = _hasher(digest)
        received = [0]  # bytes over the wire, all attempts together
        try:
            for attempt in self._retrying():
                with attempt:
                    hasher = self._transfer(url, part, digest, name, received)
        except _Transient as e:
            kept = " (the partial download is kept for next time)" if part.exists() else ""
            raise DownloadError(f"{url}: {e}{kept}") from e
        except requests.RequestException as e:
            raise DownloadError(f"{url}: {_short(e)}") from e
        actual = Digest(hasher.name, hasher.hexdigest())
        if digest is not None and actual != digest:
            part.unlink(missing_ok=True)
            _meta(part).unlink(missing_ok=True)
            raise DigestMismatch(f"{url} gave {actual}, expected {digest}; download deleted")
        target = self.blob(actual)
        target.parent.mkdir(parents=True, exist_ok=True)
        part.chmod(0o444)
        os.replace(part, target)
        _meta(part).unlink(missing_ok=True)
        self._remember(url, actual, verified=digest is not None)
        return Fetched(target, actual, digest is not None, received[0])

    def _transfer(
        self, url: str, part: Path, digest: Digest | None, name: str, received: list[int]
    ) -> Any:
        """One attempt: resume `part` if the server lets us, else start over."""
        have, validator = _resumable(part, url)
        headers = {"Range": f"bytes={have}-", "If-Range": validator} if have and validator else {}
        response = self._get(url, headers)
        with response:
            if response.status_code == 416:  # the partial file is no prefix of it
                part.unlink(missing_ok=True)
                raise _Transient("HTTP 416: starting over")
            _check_status(url, response)
            if response.status_code == 206 and _range_start(response) == have:
                hasher = _hash_file(part, _hasher(digest).name)
                mode = "ab"
            else:  # 200: the whole file again (Range ignored, or the file changed)
                hasher = _hasher(digest)
                have, mode = 0, "wb"
            _meta(part).write_text(json.dumps({"url": url, "validator": _validator(response)}))
            total = _total(response, have)
            size = have
            try:
                with part.open(mode) as out:
                    for chunk in response.iter_content(CHUNK):
                        out.write(chunk)
                        hasher.update(chunk)
                        size += len(chunk)
                        received[0] += len(chunk)
                        self.progress(name, size, total)
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as e:
                raise _Transient(f"connection broke after {size} bytes: {_short(e)}") from e
            if total is not None and size < total:
                raise _Transient(f"got {size} of {total} bytes")
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
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield


def _short(error: BaseException) -> str:
    """The root of a requests error, not its nest of wrappers."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return found.group(1).strip() if found else text[:200]


def _hasher(digest: Digest | None) -> Any:
    return hashlib.new(digest.algorithm if digest else "sha256")


def unpack(blob: Path, compression: str) -> Path:
    """The decompressed file beside a verified blob, made once (atomically)."""
    if compression in ("", "none"):
        return blob
    import bz2
    import gzip
    import lzma
    import shutil

    openers: dict[str, Callable[..., Any]] = {"xz": lzma.open, "gz": gzip.open, "bz2": bz2.open}
    if compression not in openers:
        raise InfraError(f"cannot decompress {compression!r}: xz, gz or bz2")
    target = blob.with_name(blob.name + ".unpacked")
    if target.exists():
        return target
    partial = blob.with_name(f".{blob.name}.{os.getpid()}.unpacking")
    try:
        with openers[compression](blob, "rb") as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out, CHUNK)
        partial.chmod(0o444)
        os.replace(partial, target)
    except (OSError, EOFError, lzma.LZMAError) as e:
        partial.unlink(missing_ok=True)
        raise InfraError(f"cannot decompress {blob}: {e}") from e
    return target


def _meta(part: Path) -> Path:
    return part.with_suffix(".json")


def _resumable(part: Path, url: str) -> tuple[int, str]:
    """Bytes already there and the validator they were fetched under."""
    try:
        meta = json.loads(_meta(part).read_text())
        if meta.get("url") == url and meta.get("validator"):
            return part.stat().st_size, str(meta["validator"])
    except (OSError, ValueError):
        pass
    return 0, ""


def _validator(response: requests.Response) -> str:
    etag = response.headers.get("ETag", "")
    # A weak ETag cannot guard a byte range; the modification time can.
    return etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified", "")


def _range_start(response: requests.Response) -> int:
    content_range = response.headers.get("Content-Range", "")  # bytes START-END/TOTAL
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def _total(response: requests.Response, have: int) -> int | None:
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def _check_status(url: str, response: requests.Response) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        raise _Transient(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")


def _hash_file(path: Path, algorithm: str) -> Any:
    hasher = hashlib.new(algorithm)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            hasher.update(block)
    return hasher
