"""AppTest of the Transfer page as a person uses it: defaults that follow their inputs until edited,
results that stay after the next click, the suggested LR applied with a button, Start disabled for
unreachable hub weights, and a ?run= link that shows the run first."""

import json

import pytest

from core.runs import record as runs
from tests.app._util import md_table, open_page, plotted, texts


@pytest.fixture()
def page(monkeypatch):
    import core.finetune.weights as weights

    monkeypatch.setattr(weights, "hub_reachable", lambda timeout=3.0: False)  # what this offline machine says
    at = open_page("pages/transfer.py")
    at.select_slider(key="tr.demo_size").set_value(32).run()
    at.slider(key="tr.per_class").set_value(10).run()
    at.number_input(key="tr.size").set_value(32).run()
    at.number_input(key="tr.batch").set_value(8).run()
    return at


def test_run_name_and_epochs_follow_the_recipe_until_edited(page):
    at = page
    at.selectbox(key="tr.recipe").set_value("linear_probe").run()
    assert at.text_input(key="tr.name").value == "efficientnet_lite0 · linear_probe"
    assert at.number_input(key="tr.ep").value == 20
    at.selectbox(key="tr.recipe").set_value("finetune_full").run()
    assert at.text_input(key="tr.name").value == "efficientnet_lite0 · finetune_full"  # once stayed stale
    assert at.number_input(key="tr.ep").value == 5
    at.text_input(key="tr.name").set_value("my own name").run()
    at.number_input(key="tr.ep").set_value(7).run()
    at.selectbox(key="tr.recipe").set_value("finetune_top").run()
    assert at.text_input(key="tr.name").value == "my own name" and at.number_input(key="tr.ep").value == 7
    assert not at.exception


def test_estimate_and_lr_test_stay_and_the_suggestion_applies(page):
    at = page
    at.selectbox(key="tr.recipe").set_value("finetune_full").run()
    at.button(key="tr.estimate").click().run()
    estimate = [t for t in texts(at, "success") if t.startswith("About ")]
    assert len(estimate) == 1 and "per epoch" in estimate[0] and "on cpu in fp32, batch 8" in estimate[0]
    at.button(key="tr.lrtest").click().run()  # the next click once wiped the estimate
    assert estimate[0] in texts(at, "success") and at.get("plotly_chart")
    suggestion = next(t for t in texts(at, "caption") if t.startswith("Suggested head LR"))
    lr = float(suggestion.split()[3])
    at.button(key="tr.apply_lr").click().run()
    assert at.number_input(key="tr.lr").value == pytest.approx(lr)
    at.number_input(key="tr.batch").set_value(16).run()  # other settings: the old results stay, marked
    assert estimate[0] in texts(at, "success")
    assert any(t.startswith("Made for other settings") for t in texts(at, "caption"))
    assert not at.exception


def test_hub_weights_offline_disable_start_with_the_reason(page):
    at = page
    at.selectbox(key="tr.weights").set_value("hub").run()
    assert at.button(key="tr.launch").disabled
    assert any(
        t.startswith("Start is disabled: hub weights must be downloaded from the Hugging Face hub")
        for t in texts(at, "caption")
    )
    at.selectbox(key="tr.weights").set_value("random").run()
    assert not at.button(key="tr.launch").disabled and not at.exception


def test_a_run_link_shows_the_run_first(page):
    from core.runs.cli import train as finetune

    assert (
        finetune(
            [
                "--data",
                "demo",
                "--demo-per-class",
                "8",
                "--demo-size",
                "32",
                "--image-size",
                "32",
                "--epochs",
                "1",
                "--quiet",
                "--name",
                "linked run",
            ]
        )
        == 0
    )
    run_id = runs.all_runs()[0].id
    at = open_page("pages/transfer.py", {"run": str(run_id)})
    assert at.subheader[0].value == f"Run {run_id}"
    assert texts(at, "markdown")[0].startswith(f"**Run {run_id}** · linked run")
    assert at.expander[0].label == "Start another run"
    assert not at.exception


def test_the_first_view_draws_no_chart_or_grid_and_its_tables_hold_the_counts_and_the_layer_decay(page):
    """A new visitor's Transfer page is whole without plotly.js or the data grid: the class counts and the
    per-stage learning rates are Markdown tables with bars; the log-axis LR chart is a toggle away and
    plots the same numbers."""
    at = page
    at.selectbox(key="tr.recipe").set_value("finetune_full").run()
    assert not at.get("plotly_chart") and not at.dataframe
    counts = md_table(at, "class")
    assert [r[:2] for r in counts] == [
        [c, "10"] for c in ["circle", "cross", "ring", "square", "star", "triangle"]
    ]
    assert {r[2] for r in counts} == {f":primary[{'█' * 5}]"}  # equal classes, equal full bars
    stages = md_table(at, "stage")
    assert stages[0][0] == "stem" and stages[-1][0] == "head (new classifier)" and len(stages) == 9
    # fine-tune all with discriminative LRs: the head at the head LR, each stage below at 0.6 x the next one's
    expected = [1e-3 * 0.6**k for k in range(len(stages))][::-1]
    assert [r[2] for r in stages] == [f"{lr:.3g}" for lr in expected]  # 1.68e-05 ... 0.0006, 0.001
    assert (
        stages[-1][3] == f":primary[{'█' * 5}]" and stages[-2][3] == f":primary[{'█' * 3}]"
    )  # 0.6: 24 of 40 eighths
    at.toggle(key="tr.lrs.log").set_value(True).run()
    (fig,) = at.get("plotly_chart")
    spec = json.loads(fig.proto.spec)
    bars = spec["data"][0]
    assert plotted(bars["x"]) == [r[0] for r in stages] and plotted(bars["y"]) == pytest.approx(
        expected, rel=1e-6
    )
    assert spec["layout"]["yaxis"]["type"] == "log" and not at.exception
    at.selectbox(key="tr.recipe").set_value("linear_probe").run()
    stages = md_table(at, "stage")
    assert [r[2] for r in stages] == ["frozen"] * 8 + ["0.001"] and [r[3] for r in stages][:8] == [""] * 8


def test_more_classes_than_a_markdown_table_holds_get_a_grid_with_bars(page, monkeypatch):
    from core.present import mdtable

    monkeypatch.setattr(mdtable, "MAX_ROWS", 5)  # the demo's 6 classes, over the limit
    at = page
    at.slider(key="tr.per_class").set_value(20).run()
    grid = at.dataframe[0].value
    assert list(grid["class"]) == ["circle", "cross", "ring", "square", "star", "triangle"]
    assert list(grid["images"]) == [20] * 6 and not at.exception
