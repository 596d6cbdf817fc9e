"""Where a model runs: one registry of targets, server runtimes and browser setups alike (timm's
``_registry.py``, ONNX Runtime's quantization ``registry.py``: a name, a class, one place).

A target is an entry naming its key, its label for people, its colour on every chart, where it runs
(``SERVER``: timed here by ``core.deploy.measure``; ``BROWSER``: timed by the visitor's
onnxruntime-web), the precisions it runs, and its adapter (how to prepare it and how to time it). The
registry is read when called (``list_targets()``), never frozen at import, so a target registered later
is on every table and chart. An entry without a label, with a colour that is not ``#rrggbb``, or with a
key already taken is refused at registration."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SERVER = "server"
BROWSER = "browser"
WHERE = (SERVER, BROWSER)


@dataclass(frozen=True)
class RunTarget:
    """One place a model runs. ``adapter`` prepares it and times it: for a server target an object with
    ``prepare(context) -> Prepared`` (``core.deploy.runtimes``), for a browser target a
    ``BrowserAdapter`` (``core.deploy.setups``) that tells the bench page which backend and thread count
    to start."""

    key: str
    label: str
    colour: str
    where: str
    precisions: tuple[str, ...]
    adapter: Any
    help: str = ""

    @property
    def in_browser(self) -> bool:
        return self.where == BROWSER


_REGISTRY: dict[str, RunTarget] = {}
_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")
_KEY = re.compile(r"[a-z0-9][a-z0-9_.-]{0,31}", re.IGNORECASE)


def register_target(
    key: str,
    label: str,
    colour: str,
    where: str,
    precisions: tuple[str, ...],
    adapter: Any,
    help: str = "",
) -> RunTarget:
    """Adds a target; a key or label taken, no label, a colour that is not ``#rrggbb`` (or one another
    target already has), an unknown ``where``, no precision, or no adapter is refused with a ValueError."""
    if not isinstance(key, str) or not _KEY.fullmatch(key):
        raise ValueError(f"a target's key must be 1-32 letters, digits, '_', '.' or '-', not {key!r}")
    if key in _REGISTRY:
        raise ValueError(f"target {key!r} is already registered")
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"target {key!r} needs a label for people")
    if any(t.label == label for t in _REGISTRY.values()):
        raise ValueError(f"target {key!r}: the label {label!r} is already another target's")
    if not isinstance(colour, str) or not _COLOUR.fullmatch(colour):
        raise ValueError(f"target {key!r} needs its colour as #rrggbb, not {colour!r}")
    if any(t.colour.lower() == colour.lower() for t in _REGISTRY.values()):
        raise ValueError(f"target {key!r}: the colour {colour} is already another target's")
    if where not in WHERE:
        raise ValueError(f"target {key!r} runs on {where!r}: one of {', '.join(WHERE)}")
    if not precisions:
        raise ValueError(f"target {key!r} needs at least one precision")
    if adapter is None:
        raise ValueError(f"target {key!r} needs an adapter (how to prepare and time it)")
    entry = RunTarget(key, label, colour, where, tuple(precisions), adapter, help)
    _REGISTRY[key] = entry
    return entry


def unregister_target(key: str) -> None:
    """Removes a target (a test's made-up one); an unknown key is a KeyError."""
    del _REGISTRY[key]


def list_targets(where: str | None = None) -> tuple[RunTarget, ...]:
    """Every target (or those of ``where``), in registration order: the order every table and chart shows."""
    _load_builtin()
    return tuple(t for t in _REGISTRY.values() if where is None or t.where == where)


def keys(where: str | None = None) -> tuple[str, ...]:
    return tuple(t.key for t in list_targets(where))


def get_target(key: str) -> RunTarget:
    """The target ``key``; an unknown one is a ValueError naming the known ones."""
    _load_builtin()
    if key not in _REGISTRY:
        raise ValueError(f"unknown target {key}: choose from {', '.join(_REGISTRY)}")
    return _REGISTRY[key]


def label_of(key: str) -> str:
    return get_target(key).label


def by_label(label: str) -> RunTarget | None:
    """The target a chart or table row names by its label (None for a label no target has: a browser row
    drawn as "device · setup · precision")."""
    return next((t for t in list_targets() if t.label == label), None)


def colours(where: str | None = None) -> dict[str, str]:
    """Label -> colour of every target (of ``where``): what a chart colours its series by."""
    return {t.label: t.colour for t in list_targets(where)}


def parse_targets(text: str, where: str = SERVER) -> tuple[str, ...]:
    """Comma-separated keys of ``where``'s targets, checked and de-duplicated; for the server, eager is
    first (every speed-up is against it)."""
    known = keys(where)
    names = tuple(dict.fromkeys(t.strip() for t in text.split(",") if t.strip()))
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        what = "runtime" if where == SERVER else "setup"
        raise ValueError(f"unknown {what} {', '.join(unknown) or '(none)'}: choose from {', '.join(known)}")
    if where != SERVER or names[0] == "eager":
        return names
    return ("eager", *(n for n in names if n != "eager"))


# the modules whose import registers the built-in targets (each imports this module to register, so this one
# loads them by name when first asked, as a plugin host does); ARCHSCOPE_TARGETS adds more, comma-separated
BUILTIN = ("core.deploy.runtimes", "core.deploy.setups")
PLUGINS_ENV = "ARCHSCOPE_TARGETS"


def _load_builtin() -> None:
    """Imports the adapter modules that register the built-in targets and any named in
    ``ARCHSCOPE_TARGETS`` (a module that cannot be imported is a ValueError naming it)."""
    import importlib
    import os

    extra = [m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(",") if m.strip()]
    for name in (*BUILTIN, *extra):
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise ValueError(
                f"{PLUGINS_ENV}: the target module {name!r} cannot be imported ({err})"
            ) from None
