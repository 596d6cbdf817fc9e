"""A made-up browser target, in one file: onnxruntime-web on exactly two WASM threads. Its entry names the
bench page's backend and threads; nothing else changes for it to run, be checked and be stored."""

from __future__ import annotations

from core.deploy.setups import BrowserAdapter
from core.deploy.targets import BROWSER, register_target

KEY = "wasm-2"
TARGET = register_target(
    KEY,
    "browser WASM, 2 threads",
    "#7b3294",
    BROWSER,
    ("fp32",),
    BrowserAdapter("wasm", "2"),
    help="onnxruntime-web on two WASM threads",
)
