"""The browser targets: onnxruntime-web 1.30 in the visitor's browser (``assets/bench``), one page load per
setup, since ONNX Runtime Web fixes its backend and WASM thread count when it starts. Each is an entry of
the one registry (``core.deploy.targets``) with an adapter that tells the bench page what to start."""

from __future__ import annotations

from dataclasses import dataclass

from core.deploy.targets import BROWSER, register_target


@dataclass(frozen=True)
class BrowserAdapter:
    """How the bench page runs a setup: its execution provider and WASM threads ("1", or "N": every core the
    browser reports, capped by the bench)."""

    backend: str
    threads: str

    def query(self, key: str) -> str:
        """The bench page's query string for this setup (the page reads ``setup`` and looks it up)."""
        return f"setup={key}"


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
