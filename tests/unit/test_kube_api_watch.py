"""ClientApi.stop_watches ends an open watch at once: a stopped run does not keep the API server waiting."""

from __future__ import annotations

import http.server
import json
import threading
import time
from pathlib import Path

from conformance.kube.api import ClientApi


class Streaming(http.server.BaseHTTPRequestHandler):
    """A watch that sends one event and then nothing, as an API server does while nothing changes."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        line = json.dumps({"type": "ADDED", "object": {"metadata": {"name": "p", "resourceVersion": "2"}}}) + "\n"
        self.wfile.write(f"{len(line):x}\r\n{line}\r\n".encode())
        self.wfile.flush()
        time.sleep(30)

    def log_message(self, *args: object) -> None:
        pass


def test_stop_watches_ends_a_blocked_watch(tmp_path: Path) -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Streaming)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    api = ClientApi(str(kubeconfig))
    seen: list[dict] = []
    ended = threading.Event()

    def follow() -> None:
        try:
            for change in api.watch("pods", "ns", "", "1"):
                seen.append(change)
        except ConnectionError:
            pass
        ended.set()

    threading.Thread(target=follow, daemon=True).start()
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen and seen[0]["type"] == "ADDED"
    started = time.monotonic()
    api.stop_watches()
    assert ended.wait(5), "the watch still blocks after stop_watches"
    assert time.monotonic() - started < 2
    server.shutdown()
