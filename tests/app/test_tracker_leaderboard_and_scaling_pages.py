"""The pages over a week of use (tests/seed.py): the runs tracker (config columns, failure reasons, diff,
parallel coordinates, default overlay), the leaderboard and its budget, the recommender's top-1 and
offline marks, Compound scaling counted in the background, Explore's latency protocol, and the epoch
rule on Runs."""

import re
import time

import pytest

from core import jobs
from core.finetune.bundle import BEST_RULE
from core.runs import record as runs
from core.zoo import scaling
from tests.app._util import open_page, texts


@pytest.fixture()
def week(seeded_dir, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(seeded_dir))
    return seeded_dir


def frame_with(at, column):
    for d in at.dataframe:
        value = d.value.data if hasattr(d.value, "data") else d.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with a {column!r} column")


def test_the_runs_table_is_a_tracker(week):
    at = open_page("pages/runs.py")
    table = frame_with(at, "head LR")
    for col in (
        "dataset",
        "data sha256",
        "images",
        "weights",
        "lowest LR",
        "epochs",
        "image px",
        "batch",
        "augment",
        "best val top-1 %",
        "exported epoch",
    ):
        assert col in table.columns, col
    assert "None" not in table.astype(str).to_numpy().ravel().tolist()
    failed = next(r for r in runs.all_runs() if r.status == "failed")
    assert failed.error and any(c.value == failed.error for c in at.code)  # the whole reason, one click away
    done = sorted(
        (r for r in runs.all_runs() if r.status == "done"),
        key=lambda r: (r.result["best_top1"], r.id),
        reverse=True,
    )
    assert at.multiselect(key="runs.overlay").value == [r.id for r in done[:3]]
    assert failed.id not in at.multiselect(key="runs.overlay").value
    diff = frame_with(at, "differs")
    assert len(diff) and diff["differs"].all()  # 'Only differences' is on by default
    specs = [c.proto.spec for c in at.get("plotly_chart")]
    assert any('"parcoords"' in s for s in specs) and not at.exception
    assert any(
        c.value == f"tensorboard --logdir '{week / 'tensorboard'}'" for c in at.code
    )  # the one command


def test_the_diff_shows_every_field_when_asked(week):
    at = open_page("pages/runs.py")
    done = [r.id for r in runs.all_runs() if r.status == "done"]
    at.selectbox(key="runs.diff.a").set_value(done[0]).run()
    at.selectbox(key="runs.diff.b").set_value(done[1]).run()
    at.toggle(key="runs.diff.only").set_value(False).run()
    diff = frame_with(at, "differs")
    assert {"dataset", "head LR", "augment", "best val top-1 %", "wall s"} <= set(
        diff["field"]
    ) and not at.exception


def test_the_epoch_rule_is_stated_where_the_bundle_is(week):
    at = open_page("pages/runs.py", {"runs.tab": "Evaluate and export"})
    assert any(BEST_RULE in t for t in texts(at, "caption"))
    run = next(r for r in runs.all_runs() if r.status == "done")
    at = open_page("pages/transfer.py", {"run": str(run.id)})
    assert any(BEST_RULE in t for t in texts(at, "success"))


def test_the_leaderboard_and_its_budget(week):
    at = open_page("pages/backbones.py", {"bb.tab": "Leaderboard"})
    board = frame_with(at, "latency ms, 1 thread")
    assert {"top-1 % (timm)", "latency ms, all threads", "best images/s", "GMACs", "params (M)"} <= set(
        board.columns
    )
    assert len(board) >= 2 and board["latency ms, 1 thread"].notna().all()
    fastest = float(board["latency ms, 1 thread"].min())
    at.number_input(key="lb.budget").set_value(round(fastest + 0.01, 2)).run()
    within = frame_with(at, "latency ms, 1 thread")
    assert (
        len(within) < len(board)
        and (within["latency ms, 1 thread"] <= fastest + 0.01).all()
        and not at.exception
    )


def test_the_recommender_answers_with_accuracy(week):
    at = open_page("pages/backbones.py", {"bb.tab": "Recommender"})
    cands = frame_with(at, "fine-tune offline")
    assert "efficientnet_lite0" in set(cands["candidate"])
    assert bool(cands.set_index("candidate").loc["efficientnet_lite0", "fine-tune offline"])
    assert cands.set_index("candidate").loc["resnet50", "top-1 % (timm)"] == pytest.approx(81.2, abs=0.1)
    at.number_input(key="rec.budget").set_value(0.0).run()  # no budget: the scenario's first choice ...
    assert any(a.startswith("**efficientnet_lite0**, ImageNet-1k top-1") for a in texts(at, "success"))
    at.toggle(key="rec.online").set_value(True).run()  # ... that this machine can train, unless online
    assert any(
        a.startswith("**resnet50**, ImageNet-1k top-1 81.2% (timm, published)") for a in texts(at, "success")
    )


@pytest.mark.slow
def test_compound_scaling_counts_in_the_background_and_shows_the_first_point(tmp_path, monkeypatch):
    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    t = time.time()
    at = open_page("pages/backbones.py", {"bb.tab": "Compound scaling"})
    job = jobs.latest(scaling.KIND)
    assert job is not None and time.time() - t < 60  # the page did not count anything itself
    started = [i.value for i in at.info if "This tab has started a background job" in i.value]
    counted = re.search(r"counts the (\d+) network\(s\) not yet measured", started[0]) if started else None
    assert counted and int(counted.group(1)) >= 9  # it says so: B0-B7 and at least one scaled network
    first = frame_with(at, "measured MAC ratio")
    assert first["predicted cost ratio"].notna().all()  # the prediction is there at once
    end = time.time() + 60
    while time.time() < end and scaling.scaled_count(1.0, 1.0, 224, compute=False) is None:
        time.sleep(0.2)
    at.run()
    shown = frame_with(at, "measured MAC ratio")
    assert shown["measured MAC ratio"].iloc[0] == 1.0 and not at.exception
    jobs.request_cancel(job.id)  # the rest (B7 at 600 px) is not this test's


def test_explore_uses_the_comparison_protocol(week):
    at = open_page("pages/blocks.py", {"explore.block": "depthwise_separable"})
    notes = texts(at, "caption") + texts(at, "warning")
    assert any("the same rule as Compare's ratios" in n for n in notes) and not at.exception
