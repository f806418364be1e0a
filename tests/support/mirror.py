"""A Debian mirror on loopback that passes the real archive's files through, altering the ones a test names:
the way to show that a tampered InRelease, Packages index or .deb is refused."""

from __future__ import annotations

import threading
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Tamper = Callable[[bytes], bytes]
_UPSTREAM: dict[str, bytes] = {}  # the real files, fetched once per test session
_LOCK = threading.Lock()


def upstream(url: str) -> bytes:
    with _LOCK:
        if url not in _UPSTREAM:
            with urllib.request.urlopen(url, timeout=300) as resp:
                _UPSTREAM[url] = resp.read()
        return _UPSTREAM[url]


@contextmanager
def tampering_mirror(real: str, tamper: dict[str, Tamper] | None = None) -> Iterator[str]:
    """A mirror URL on 127.0.0.1 serving `real`'s files; a path ending in a key of `tamper` is altered by it."""
    changes = tamper or {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                data = upstream(real.rstrip("/") + self.path)
            except OSError:
                self.send_error(404)
                return
            for suffix, change in changes.items():
                if self.path.endswith(suffix):
                    data = change(data)
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
