"""A real HTTP server on 127.0.0.1 for the download tests, with the misbehaviours real
mirrors have: Range support (or not), connections cut mid-body, 503s, 404s, slowness.
It records every request it answers."""

from __future__ import annotations

import hashlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote


@dataclass
class Served:
    body: bytes | Path
    ignore_range: bool = False
    fail_first: int = 0  # answer 503 this many times first
    cut_first_after: int | None = None  # first full response stops after N bytes
    delay_s: float = 0.0  # pause between chunks (to overlap concurrent clients)
    etag: str = ""
    endless: bool = False  # after the body, the same bytes again until the client leaves
    trickle_s: float = 0.0  # one byte at a time, this many seconds apart
    length: int | None = None  # the Content-Length to claim (default: the body's)
    served: int = field(default=0)

    def data(self) -> bytes:
        return self.body.read_bytes() if isinstance(self.body, Path) else self.body


@dataclass
class Request:
    path: str
    range: str | None
    method: str = "GET"


class Server:
    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.requests: list[Request] = []
        self.connections = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def setup(self) -> None:
                server.connections += 1
                super().setup()

            def do_HEAD(self) -> None:
                self.do_GET(head=True)

            def do_GET(self, head: bool = False) -> None:
                method = "HEAD" if head else "GET"
                server.requests.append(Request(self.path, self.headers.get("Range"), method))
                # apt quotes what it asks for (`+` as %2b): a file may be named either way
                served = server.files.get(self.path) or server.files.get(unquote(self.path))
                if served is None:
                    self._reply(404, b"not found")
                    return
                if served.fail_first > 0:
                    served.fail_first -= 1
                    self._reply(503, b"busy")
                    return
                data = served.data()
                etag = served.etag or '"' + hashlib.sha256(data).hexdigest()[:16] + '"'
                wanted = self.headers.get("Range")
                start = 0
                if (
                    wanted
                    and not served.ignore_range
                    and self.headers.get("If-Range") in (None, etag)
                ):
                    start = int(wanted.split("=")[1].split("-")[0])
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                if served.endless:
                    self.close_connection = True  # the body ends when the connection does
                else:
                    length = served.length if served.length is not None else len(data) - start
                    self.send_header("Content-Length", str(length))
                self.send_header("ETag", etag)
                self.end_headers()
                body = data[start:]
                if head:
                    return
                if served.endless or served.trickle_s:
                    self._pour(served, body)
                    return
                if served.cut_first_after is not None and served.served == 0 and start == 0:
                    body = body[: served.cut_first_after]
                    served.served += 1
                    self.wfile.write(body)
                    self.close_connection = True
                    return
                served.served += 1
                for at in range(0, len(body), 1 << 16):
                    self.wfile.write(body[at : at + (1 << 16)])
                    time.sleep(served.delay_s)

            def _pour(self, served: Served, body: bytes) -> None:
                """Endless or trickling: until the body ends (or forever) or the client
                goes away."""
                try:
                    while True:
                        if served.trickle_s:
                            for byte in body:
                                self.wfile.write(bytes([byte]))
                                self.wfile.flush()
                                time.sleep(served.trickle_s)
                        else:
                            self.wfile.write(body)
                        if not served.endless:
                            return
                except OSError:
                    self.close_connection = True

            def _reply(self, code: int, text: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(text)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def gets(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def __enter__(self) -> Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
