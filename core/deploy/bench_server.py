"""The bench's own web server, for the command line (``core.deploy.browser``): the bench page and module
(``/bench/``), the vendored onnxruntime-web (``/ort/``, each file checked against ``SHA256SUMS`` first, a
changed one never served) and one prepared bench (``/data/``), on a free loopback port, cross-origin isolated
(COOP ``same-origin``, COEP ``require-corp``) so the page may use WASM threads. The app serves the same files
through ``core.web.server`` with the same headers and checks."""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parents[2]
ORT_DIR = ROOT / "assets" / "ort"
BENCH_DIR = ROOT / "assets" / "bench"
CONTENT_TYPES = {
    ".mjs": "text/javascript",
    ".js": "text/javascript",
    ".wasm": "application/wasm",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".onnx": "application/octet-stream",
    ".f32": "application/octet-stream",
}
ISOLATION_HEADERS = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
    "Cross-Origin-Resource-Policy": "same-origin",
}


# the vendored runtime's files, checked once per folder: name -> "" (good) or why not
_VERIFIED: dict[Path, dict[str, str]] = {}


def verify_runtime(folder: Path = ORT_DIR) -> dict[str, str]:
    """Each file of the vendored onnxruntime-web that ``SHA256SUMS`` lists, checked against its sum: "" when
    it matches, else why not (said in the log; such a file is not served). Checked once per process, at
    start; returns the verdicts."""
    import hashlib
    import sys

    if folder in _VERIFIED:
        return _VERIFIED[folder]
    verdicts = _VERIFIED.setdefault(folder, {})
    try:
        sums = dict(
            reversed(line.split())
            for line in (folder / "SHA256SUMS").read_text().splitlines()
            if line.strip()
        )
    except (OSError, ValueError) as err:
        sums = {}
        print(
            f"  Archscope: assets/ort/SHA256SUMS cannot be read ({err}): the runtime is not served",
            file=sys.stderr,
        )
    for name, want in sums.items():
        try:
            got = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        except OSError as err:
            got, why = "", f"cannot be read ({err.strerror or err})"
        else:
            why = (
                "" if got == want else f"does not match SHA256SUMS (sha256 {got[:12]}…, listed {want[:12]}…)"
            )
        verdicts[name] = why
        if why:
            print(f"  Archscope: assets/ort/{name} {why}: it is not served", file=sys.stderr, flush=True)
    return verdicts


class Handler(SimpleHTTPRequestHandler):
    """Serves exactly three folders (``/ort/``, ``/bench/``, ``/data/``) and nothing else, with the
    isolation headers and the right content types; a name with a slash or a dot-dot in it is a 404."""

    roots: dict[str, Path] = {}

    def do_GET(self) -> None:  # noqa: N802  (http.server's name)
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        root = self.roots.get(parts[0]) if len(parts) == 2 else None
        name = parts[-1]
        if root is None or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name.startswith("."):
            self.send_error(404)
            return
        file = root / name
        if not file.is_file():
            self.send_error(404)
            return
        if parts[0] == "ort" and verify_runtime(root).get(name, "not listed in SHA256SUMS"):
            self.send_error(503, f"assets/ort/{name} is not served: it does not match SHA256SUMS")
            return
        body = file.read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPES.get(file.suffix, "application/octet-stream"))
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in ISOLATION_HEADERS.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:  # quiet: a CLI prints its own progress
        pass


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """The bench (``/bench/bench.html``), the runtime (``/ort/``) and ``folder`` (``/data/``) on a free
    loopback port, cross-origin isolated; yields the base URL."""
    handler = type("Handler", (Handler,), {"roots": {"ort": ORT_DIR, "bench": BENCH_DIR, "data": folder}})
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler))
    thread = threading.Thread(target=server.serve_forever, name="bench-server", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
