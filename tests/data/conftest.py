"""Fixtures for the data tests: an isolated environment, fake datasets, a local HTTP server."""

import http.server
import threading
from pathlib import Path

import pytest

from paracnn.data import checksums, download
from paracnn.data.idx import write_fake_dataset


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    """No PARACNN_* settings from the outside, a private cache, no system folders.

    Returns the cache folder (``tmp_path/"cache"``, not yet created).
    """
    for var in ("PARACNN_DATA_DIR", "PARACNN_MIRROR", "PARACNN_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("PARACNN_CACHE_DIR", str(cache))
    for name in list(checksums.SYSTEM_DIRS):
        monkeypatch.delitem(checksums.SYSTEM_DIRS, name)
    # A stalled local server must fail the test quickly, not hang it.
    monkeypatch.setattr(download, "TIMEOUT", 10)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    return cache


@pytest.fixture
def fake_mnist(tmp_path):
    """A fake dataset at ``tmp_path/"fake"/"mnist"``: returns ``(root, hashes)``."""
    root = tmp_path / "fake"
    hashes = write_fake_dataset(root / "mnist", train_size=40, test_size=12, seed=1)
    return root, hashes


class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files from ``root``; ``mode`` makes it misbehave the way real servers do."""

    root = "."
    mode = "files"
    requests = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, directory=self.root, **kwargs)

    def do_GET(self):
        self.requests.append(self.path)
        if self.mode == "html":
            body = b"<!DOCTYPE html>\n<html><body><h1>Access denied</h1></body></html>\n"
            return self._send(body, "text/html")
        if self.mode == "short":
            # Promise the whole file but send half of it, then hang up.
            data = (Path(self.root) / self.path.lstrip("/")).read_bytes()
            return self._send(data[: len(data) // 2], "application/gzip", length=len(data))
        return super().do_GET()

    def _send(self, body, ctype, length=None):
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length or len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """Start a local HTTP server: ``serve(root, mode="files"|"html"|"short") -> (url, requests)``.

    ``requests`` collects the requested paths. Every server is shut down
    after the test.
    """
    running = []

    def start(root, mode="files"):
        requests = []
        handler = type("Handler", (_Handler,), {"root": str(root), "mode": mode, "requests": requests})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        running.append((server, thread))
        return f"http://127.0.0.1:{server.server_address[1]}/", requests

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
