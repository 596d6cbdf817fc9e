"""The README's Layout section matches the tree: every package of core/ is listed, and every listed path
exists. The code is a stack of layers: no import runs from a lower layer to a higher one, no module
imports itself back through others, and no folder holds more than 15% of the lines."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_layout_lists_every_core_package_and_nothing_that_is_gone():
    text = (ROOT / "README.md").read_text()
    block = text.split("## Layout", 1)[1].split("```")[1]
    listed = {m.rstrip("/") for m in re.findall(r"^(\S+)", block, flags=re.M)}
    packages = {f"core/{p.name}" for p in (ROOT / "core").iterdir() if (p / "__init__.py").exists()}
    assert packages <= listed, packages - listed
    assert all((ROOT / path).exists() for path in listed), [p for p in listed if not (ROOT / p).exists()]
    assert {p.name for p in (ROOT / "core").glob("*.py")} == {
        "__init__.py",
        "config.py",
        "cli.py",
        "errors.py",
    }  # the rest: packages


# lowest first; a module may import its own layer and those below it. core/runs sits above the engine
# (finetune)
# and the runtimes (deploy): the record of a run and what is done to it.
LAYERS = [
    {"core/__init__.py", "core/config.py", "core/cli.py", "core/errors.py", "core/present"},
    {"core/data", "core/measure"},
    {"core/blocks", "core/jobs", "core/finetune"},
    {"core/zoo"},
    {"core/deploy"},
    {"core/runs"},
    {"core/web"},
    {"pages"},
    {"app.py"},
]


def _unit(path: Path) -> str:
    rel = path.relative_to(ROOT).as_posix()
    return next(u for layer in LAYERS for u in layer if rel == u or rel.startswith(u + "/"))


def _layer(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.exists():
            return cand
    return None


def _imports(path: Path) -> set[Path]:
    """The project files a module imports (at any depth in the file: lazy imports count too)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            if (
                name.split(".")[0] in ("core", "pages")
                and (f := _module_file(name)) is not None
                and f != path
            ):
                out.add(f)
    return out


def _files() -> list[Path]:
    return sorted([*(ROOT / "core").rglob("*.py"), *(ROOT / "pages").glob("*.py"), ROOT / "app.py"])


def test_no_import_runs_up_the_layers():
    upward = [
        f"{f.relative_to(ROOT)} -> {g.relative_to(ROOT)}"
        for f in _files()
        for g in _imports(f)
        if _layer(_unit(g)) > _layer(_unit(f))
    ]
    assert upward == []


def test_no_module_imports_itself_back():
    graph = {f: _imports(f) - {ROOT / "core" / "__init__.py"} for f in _files()}
    state: dict[Path, int] = {}
    cycles = []

    def visit(f: Path, stack: list[Path]) -> None:
        state[f] = 1
        for g in graph.get(f, ()):
            if g.name == "__init__.py" and g.parent in f.parents:  # a package's face, read by its own modules
                continue
            if state.get(g) == 1:
                cycles.append(
                    " -> ".join(p.relative_to(ROOT).as_posix() for p in stack[stack.index(g) :] + [g])
                )
            elif g not in state:
                visit(g, stack + [g])
        state[f] = 2

    for f in graph:
        if f not in state:
            visit(f, [f])
    assert cycles == []


def test_no_folder_holds_over_15_percent_of_the_lines():
    files = [*_files(), *(ROOT / "benchmarks").glob("*.py")]
    lines = {f: len(f.read_text().splitlines()) for f in files}
    total = sum(lines.values())
    by_folder: dict[str, int] = {}
    for f, n in lines.items():
        by_folder[f.parent.relative_to(ROOT).as_posix()] = (
            by_folder.get(f.parent.relative_to(ROOT).as_posix(), 0) + n
        )
    shares = {k: v / total for k, v in by_folder.items()}
    assert max(shares.values()) <= 0.15, sorted(shares.items(), key=lambda kv: -kv[1])[:3]


def _private_imports(path: Path) -> list[str]:
    """``from project.module import _name`` where ``_name`` is not a module of its own
    (``pages/_widgets.py`` is a module whose name hides it from Streamlit's navigation, and may be
    imported)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] not in ("core", "pages", "benchmarks", "tests"):
                continue
            for alias in node.names:
                if alias.name.startswith("_") and _module_file(f"{node.module}.{alias.name}") is None:
                    out.append(f"{path.relative_to(ROOT)}: from {node.module} import {alias.name}")
    return out


def test_no_module_imports_another_modules_private_name():
    files = [*_files(), *(ROOT / "benchmarks").glob("*.py")]
    assert [line for f in files for line in _private_imports(f)] == []


def test_the_private_name_rule_sees_one(tmp_path, monkeypatch):
    fake = ROOT / "core" / "_layout_probe_tmp.py"
    try:
        fake.write_text("from core.deploy.targets import _REGISTRY\nfrom pages import _widgets\n")
        assert _private_imports(fake) == [
            "core/_layout_probe_tmp.py: from core.deploy.targets import _REGISTRY"
        ]
    finally:
        fake.unlink()
