"""The README's Layout section matches the tree: every package of core/ is listed, and every listed path exists."""
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
    assert len(list((ROOT / "core").glob("*.py"))) == 2          # __init__ and config: the rest lives in packages
