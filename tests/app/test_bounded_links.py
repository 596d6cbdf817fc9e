"""A link cannot take the server down: sizes in the URL are bounded before the page builds anything, and a
read-only data directory is shown with a banner instead of hiding everything."""

import resource

import pytest

from tests.app._util import open_page, texts
from tests.helpers import read_only_mount


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize(
    "query",
    [
        {"explore.block": "conv", "conv.batch": "100000"},  # over the widget's bound
        {"explore.block": "conv", "conv.batch": "1024", "conv.hw": "1024"},  # in bounds, far over the budget
        {
            "explore.block": "inverted_residual",
            "inverted_residual.in_chs": "4096",
            "inverted_residual.hw": "1024",
        },
        {"explore.block": "conv", "conv.batch": "1024", "conv.hw": "1024", "blocks.tab": "Roofline"},
    ],
)
def test_a_link_with_huge_sizes_is_refused_in_words(query):
    before = peak_rss_mib()
    at = open_page("pages/blocks.py", query)
    assert not at.exception
    shown = texts(at, "error")
    big = int(query.get("conv.batch", 1)) > 1024
    # over the widget's bound, Streamlit keeps the default (batch 1) and the page draws it; else core refuses
    assert big or any(
        t.startswith(("Cannot build this block: refused:", "Cannot profile this block: refused:"))
        for t in shown
    ), shown
    assert peak_rss_mib() - before < 1024  # no tensor of the link's size was ever made


def test_a_read_only_data_directory_shows_its_runs_with_a_banner(seeded_dir, tmp_path, monkeypatch):
    with read_only_mount(seeded_dir, tmp_path / "ro") as mount:
        monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(mount))
        at = open_page("pages/runs.py")
        assert any("is read-only" in w for w in texts(at, "warning"))
        table = next(d.value for d in at.dataframe if "best val top-1 %" in getattr(d.value, "columns", []))
        assert len(table) >= 5  # the week's runs, all of them
        assert not at.exception


def test_a_data_directory_deleted_under_the_app_is_reported_not_made_again(tmp_path, monkeypatch):
    import shutil

    where = tmp_path / "data"
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(where))
    at = open_page("pages/runs.py")
    shutil.rmtree(where)
    at.run()
    assert not at.exception
    assert any(f"the data directory {where} was moved or deleted" in e for e in texts(at, "error"))
    assert not where.exists()
