"""`restart` cases: any pytest process asks the process that owns the runtime daemon (the controller) to
restart it, over a unix socket in the run's state."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from conformance.errors import SuiteError

RESTART_WAIT = 120.0


class RestartServer:
    """Serves runtime-restart requests from any pytest process on a unix socket; the process that
    owns the daemon (the controller) runs it and calls `hook` for each request."""

    def __init__(self, path: Path, hook: Callable[[], None]):
        self.path = path
        self.hook = hook
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        path.unlink(missing_ok=True)
        self.sock.bind(str(path))
        self.sock.listen(4)
        self.thread = threading.Thread(target=self._serve, name="sgp-restart", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.recv(64)
                    self.hook()
                    reply = "ok\n"
                except Exception as exc:
                    reply = f"error {type(exc).__name__}: {exc}".replace("\n", " ") + "\n"
                with contextlib.suppress(OSError):
                    conn.sendall(reply.encode())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.path.unlink(missing_ok=True)


def request_restart(path: str) -> None:
    """Ask the RestartServer at `path` to restart the runtime; SuiteError unless it says ok."""
    if not path:
        raise SuiteError("a `restart` case needs the runtime's owner to restart it; this run has no restart hook")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(RESTART_WAIT)
        try:
            sock.connect(path)
            sock.sendall(b"restart\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                reply += chunk
        except OSError as exc:
            raise SuiteError(f"runtime restart request failed: {exc}") from exc
    text = reply.decode(errors="replace").strip()
    if text != "ok":
        raise SuiteError(f"runtime restart failed: {text or 'no answer'}")


