"""The README's two set-up commands work on a fresh Debian 12 (PEP 668: a venv, never the system pip), and
the test command is exactly the one CI runs."""

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def setup_commands() -> list[str]:
    section = (
        (ROOT / "README.md").read_text().split("## Set up on a fresh machine", 1)[1].split("\n## ", 1)[0]
    )
    return re.findall(r"```bash\n(.+?)\n```", section, flags=re.S)


def test_ci_runs_the_readme_test_command():
    ci_line = [ln for ln in (ROOT / ".ci/run").read_text().splitlines() if "pytest" in ln]
    assert len(ci_line) == 1 and ci_line[0].strip() == setup_commands()[1].strip()


def test_both_commands_install_into_a_venv_and_never_into_the_system_python():
    run_app, run_tests = setup_commands()
    for command in (run_app, run_tests):
        steps = [s.strip() for s in command.split("&&")]
        assert "python3 -m venv .venv" in steps
        installs = [s for s in steps if "pip" in s]
        assert installs and all(s.startswith(".venv/bin/pip install") for s in installs), installs
        assert not any(re.match(r"(python3 -m pip|pip3?) ", s) for s in steps)
        assert steps.index("python3 -m venv .venv") < steps.index(installs[0])
    assert run_app.rstrip().endswith(".venv/bin/streamlit run app.py")
    assert (
        run_tests.rstrip().endswith(".venv/bin/python -m pytest -q -n 2 --dist loadgroup")
        and "python3-venv" in run_tests
    )
    assert "pytest-xdist==" in (ROOT / "requirements-dev.txt").read_text()  # -n needs it, from a clean clone


@pytest.mark.slow
def test_cli_help_is_fast_shows_choices_and_defaults_and_imports_no_torch():
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "core.runs", "train", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.perf_counter() - t
    assert out.returncode == 0
    text = " ".join(out.stdout.split())  # argparse wraps lines at the terminal width
    assert "{linear_probe,finetune_top,finetune_full,scratch}" in text and "(default: linear_probe)" in text
    assert "(default: offline)" in text and "{cosine,onecycle,constant}" in text
    imported = {
        line.split("|")[-1].strip() for line in out.stderr.splitlines() if line.startswith("import time:")
    }
    assert "torch" not in imported and "timm" not in imported, sorted(m for m in imported if "torch" in m)[:5]
    print(f"--help took {took:.2f} s")


@pytest.mark.slow
@pytest.mark.parametrize(
    "old, new",
    [
        (["core.finetune", "--help"], "python -m core.runs train"),
        (["core.deploy", "export", "--help"], "python -m core.runs export"),
    ],
)
def test_the_old_command_spellings_forward_with_one_line(old, new):
    out = subprocess.run([sys.executable, "-m", *old], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    notes = [ln for ln in out.stderr.splitlines() if ln.startswith("note:")]
    assert notes == [f"note: `python -m {' '.join(old[:-1])}` is now `{new}`; forwarding"]
    assert f"usage: {new}" in out.stdout


def test_the_readme_names_the_new_commands_and_the_fast_loop():
    text = (ROOT / "README.md").read_text()
    assert "-m core.runs train" in text and "python3 -m core.runs export" in text
    assert "-m core.finetune --data" not in text and "core.deploy export RUN_ID" not in text
    develop = text.split("## Develop", 1)[1].split("\n## ", 1)[0]
    assert '-m "not slow"' in develop
