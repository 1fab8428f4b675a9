"""The small parts of HTTP that downloads need: status, lengths, validators for
resuming (RFC 9110 sections 8.8 and 13.1.5: a strong ETag or Last-Modified guards a
range), and a partial file's record of which URL and validator it came from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import requests

from harness.errors import InfraError


class DownloadError(InfraError):
    reason = "download-failed"


class Transient(Exception):
    """Worth another try: the connection broke, or the server said 5xx/429."""


def short(error: BaseException) -> str:
    """The root of a requests error, not its nest of wrappers."""
    text = str(error)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    return found.group(1).strip() if found else text[:200]


def meta(part: Path) -> Path:
    return part.with_suffix(".json")


def resumable(part: Path, url: str) -> tuple[int, str]:
    """Bytes already there and the validator they were fetched under."""
    try:
        record = json.loads(meta(part).read_text())
        if record.get("url") == url and record.get("validator"):
            return part.stat().st_size, str(record["validator"])
    except (OSError, ValueError):
        pass
    return 0, ""


def validator_of(response: requests.Response) -> str:
    etag = response.headers.get("ETag", "")
    # A weak ETag cannot guard a byte range; the modification time can.
    return etag if etag and not etag.startswith("W/") else response.headers.get("Last-Modified", "")


def range_start(response: requests.Response) -> int:
    content_range = response.headers.get("Content-Range", "")  # bytes START-END/TOTAL
    try:
        return int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return -1


def content_total(response: requests.Response, have: int) -> int | None:
    length = response.headers.get("Content-Length")
    return have + int(length) if length and length.isdigit() else None


def check_status(url: str, response: requests.Response) -> None:
    if response.status_code == 429 or response.status_code >= 500:
        raise Transient(f"HTTP {response.status_code}")
    if response.status_code >= 400:
        raise DownloadError(f"{url}: HTTP {response.status_code} {response.reason}")
