"""Pages over a data directory as a week of use leaves it (tests/seed.py), one test per crash seen there,
and pages over a damaged or read-only store."""

import sqlite3

import pytest

from core.jobs import store
from core.present import fmt
from core.runs import record as runs
from tests.app._util import open_page, texts
from tests.seed import MODELS, NASTY_NAME, RESOLUTIONS


@pytest.fixture()
def week(seeded_dir, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(seeded_dir))
    return seeded_dir


def backbones(tab: str):
    return open_page("pages/backbones.py", {"bb.tab": tab})


def test_backbones_page_with_stored_sweeps_renders_every_tab(week):
    at = backbones("Throughput")  # the sweep toggle and the sweep chart once shared a key
    sweeps = next(d.value for d in at.dataframe if "saturation batch" in d.value.columns)
    assert sorted(zip(sweeps["model"], sweeps["resolution"])) == sorted(
        (m, r) for m in MODELS for r in RESOLUTIONS
    )
    measured = next(d.value for d in backbones("Measure").dataframe if "resolution (px)" in d.value.columns)
    assert len(measured) == len(MODELS) * len(RESOLUTIONS)
    assert {m.label for m in backbones("Compound scaling").metric} >= {"Depth ×", "Width ×", "Resolution"}
    assert len(backbones("Accuracy vs cost").get("plotly_chart")) == 2  # latency and MACs Pareto plots
    rec = backbones("Recommender")
    assert any(
        "recipe" in t.lower() for t in texts(rec, "success") + texts(rec, "warning") + texts(rec, "info")
    )  # a pick, or why not


def test_scaled_network_latency_toggle_measures(week):
    at = backbones("Compound scaling")
    at.toggle(key="cs.time").set_value(True).run()  # measure_scaled() once refused the sidebar's threads
    assert not at.exception
    line = next(m for m in texts(at, "markdown") if m.startswith("φ = 2.0:"))
    assert "at batch 1 and 296 px on cpu" in line and "12,255,408 params" in line


def test_every_finished_run_can_be_evaluated(week):
    at = open_page("pages/runs.py", {"runs.tab": "Evaluate and export"})
    box = at.selectbox(key="eval.run")  # once built inside a generator: duplicate key on run 2+
    done = [r.id for r in runs.all_runs() if r.status == "done"]
    assert list(box.options) and len(box.options) == len(done) == 7
    for value in done[::-1]:
        at.selectbox(key="eval.run").set_value(value).run()
        assert not at.exception
        assert at.selectbox(key="eval.run").value == value


@pytest.mark.parametrize("value", ["99999999999999999999", "²", "-1", "1e3", " "])
def test_a_bad_run_id_in_the_url_is_a_message(week, value):
    at = open_page("pages/transfer.py", {"run": value})
    assert any("is not a run id" in e for e in texts(at, "error")), texts(at, "error")


def test_an_unknown_run_id_says_so(week):
    at = open_page("pages/transfer.py", {"run": "424242"})
    assert any("There is no run 424242" in e for e in texts(at, "error"))


def test_user_text_is_literal_on_the_watch_view(week):
    run = next(r for r in runs.all_runs() if r.name == NASTY_NAME)
    at = open_page("pages/transfer.py", {"run": str(run.id)})
    header = next(m.value for m in at.markdown if m.value.startswith(f"**Run {run.id}**"))
    assert fmt.md(NASTY_NAME) in header and NASTY_NAME not in header
    table = next(d.value for d in open_page("pages/runs.py").dataframe if "name" in d.value.columns)
    assert NASTY_NAME in set(table["name"])  # dataframe cells are literal already


def test_a_damaged_store_is_named_and_the_pages_keep_working(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    (tmp_path / "archscope.sqlite").write_bytes(b"this is not a database " * 200)
    for tab in ("Measure", "Accuracy vs cost", "Throughput", "Recommender"):
        errors = texts(backbones(tab), "error")
        assert errors and all(str(tmp_path / "archscope.sqlite") in e and "damaged" in e for e in errors), tab
    assert {m.label for m in backbones("Compound scaling").metric} >= {"Depth ×", "Width ×"}  # needs no store
    at = open_page("pages/runs.py")
    assert any("damaged" in e for e in texts(at, "error"))
    at = open_page("pages/transfer.py", {"run": "1"})
    assert any("damaged" in e for e in texts(at, "error"))
    with pytest.raises(store.StoreError, match="damaged"):
        runs.all_runs()


def test_a_read_only_store_still_shows_what_it_holds(week, monkeypatch):
    real = sqlite3.connect

    def read_only(database, *args, uri=False, **kw):  # what a user without write permission gets
        if not uri:
            database, uri = f"file:{database}?mode=ro", True
        return real(database, *args, uri=uri, **kw)

    monkeypatch.setattr(store.sqlite3, "connect", read_only)
    at = open_page("pages/runs.py")
    table = next(d.value for d in at.dataframe if "name" in d.value.columns)
    assert len(table) == 9
    with pytest.raises(store.StoreError, match="read-only"):
        runs.create({}, "cannot be saved")


def test_the_freezing_depth_experiment_is_fair_and_scored_on_held_out_images(week):
    from core import jobs
    from core.runs import experiment

    job = jobs.latest(experiment.KIND)
    frame = experiment.results(job)
    done = frame[frame["status"] == "done"]
    assert len(done) == 4 and set(done["epochs"]) == {job.args["config"]["epochs"]}  # one budget for all
    assert (done["test images"] > 0).all() and (done["picked epoch"] >= 1).all()
    assert (
        (done["test 95% low"] <= done["test top-1 %"]) & (done["test top-1 %"] <= done["test 95% high"])
    ).all()
    for r in runs.by_job(job.id):  # the test split is disjoint from what training and selection saw
        info = r.result["info"]
        assert info["test_images"] == r.result["test"]["n"] and info["val_images"] > 0
    at = open_page("pages/runs.py", {"runs.tab": "Effect of freezing depth"})
    assert any(
        t.startswith(f"Every recipe trains for the same {job.args['config']['epochs']} epochs")
        for t in texts(at, "caption")
    )
    assert not at.exception
