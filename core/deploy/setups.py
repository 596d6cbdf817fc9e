"""The browser targets: onnxruntime-web 1.30 in the visitor's browser (``assets/bench``), one page load per
setup, since ONNX Runtime Web fixes its backend and WASM thread count when it starts. Each is an entry
of the one registry (``core.deploy.targets``) with an adapter that tells the bench page what to start."""

from __future__ import annotations

from dataclasses import dataclass

from core.deploy.targets import BROWSER, register_target


@dataclass(frozen=True)
class BrowserAdapter:
    """How the bench page runs a setup: its execution provider ("wasm" or "webgpu") and WASM threads ("1",
    a count up to the bench's cap, or "N": every core the browser reports, capped by the bench)."""

    def __post_init__(self) -> None:
        if self.backend not in ("wasm", "webgpu"):
            raise ValueError(f"a browser backend is wasm or webgpu, not {self.backend!r}")
        if self.threads != "N" and not (self.threads.isdigit() and 1 <= int(self.threads) <= 8):
            raise ValueError(f"a browser setup's threads are 1 to 8 or N, not {self.threads!r}")

    backend: str
    threads: str

    def query(self, key: str) -> str:
        """The bench page's query string for this setup: its key (what the result is filed under), the
        backend and the threads the page starts onnxruntime-web with (``assets/bench/bench.mjs``)."""
        from urllib.parse import urlencode

        return urlencode({"setup": key, "backend": self.backend, "threads": self.threads})


register_target(
    "wasm-1",
    "browser WASM, 1 thread",
    "#2b8cbe",
    BROWSER,
    ("fp32", "int8"),
    BrowserAdapter("wasm", "1"),
    help="onnxruntime-web on one WASM thread: what every browser can do",
)
register_target(
    "wasm-N",
    "browser WASM, N threads",
    "#045a8d",
    BROWSER,
    ("fp32", "int8"),
    BrowserAdapter("wasm", "N"),
    help="onnxruntime-web on every core the browser reports (needs a cross-origin isolated page)",
)
register_target(
    "webgpu",
    "browser WebGPU",
    "#a6bddb",
    BROWSER,
    ("fp32",),
    BrowserAdapter("webgpu", "1"),
    help="onnxruntime-web's WebGPU provider (fp32 only: its int8 is known to give wrong results)",
)
