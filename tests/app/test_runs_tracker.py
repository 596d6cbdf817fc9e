"""AppTest of the Runs page as a tracker: runs picked by what they are, filters and overlay in the URL, one
colour per run, smoothing / log scale / x-axis, rename, tag and delete (with the files), data usage and
clean-up."""

import pytest

from core.present import run_plots, style
from core.runs import record as runs
from tests.app._util import open_page, texts


@pytest.fixture(scope="module")
def two_runs():
    from core.runs.cli import train as finetune

    made = []
    for recipe, name in (("linear_probe", "probe A"), ("finetune_top", "top B")):
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
                    "2",
                    "--batch-size",
                    "8",
                    "--quiet",
                    "--recipe",
                    recipe,
                    "--name",
                    name,
                ]
            )
            == 0
        )
        made.append(runs.all_runs()[0])
    return made


@pytest.mark.slow
def test_filters_overlay_and_curve_controls(two_runs):
    probe, top = two_runs
    at = open_page("pages/runs.py", {"runs.recipe": "finetune_top"})  # a filter from a shared link
    table = at.dataframe[0].value
    names = set(table.data["name"]) if hasattr(table, "data") else set(table["name"])
    assert "top B" in names and "probe A" not in names
    overlay = at.multiselect(key="runs.overlay")
    assert overlay.value[0] == top.id and overlay.format_func(top.id) == f"#{top.id} top B" == top.chip()
    fig = at.get("plotly_chart")[0].proto.spec
    assert style.run_colour(top.id) in fig and '"dash":"dash"' in fig.replace(
        " ", ""
    )  # val dashed, run's colour
    at.slider(key="runs.smooth").set_value(0.9).run()
    at.toggle(key="runs.log").set_value(True).run()
    at.radio(key="runs.x").set_value("wall time").run()
    spec = at.get("plotly_chart")[0].proto.spec
    assert "wall time (s)" in spec and '"type":"log"' in spec.replace(" ", "") and not at.exception


def test_ema_matches_tensorboard():
    # w = 0.5 on [1, 0, 0]: raw EMA 0.5, 0.25, 0.125 debiased by 1 - 0.5^t: 1, 1/3, 1/7
    assert run_plots.ema([1.0, 0.0, 0.0], 0.5) == pytest.approx([1.0, 1 / 3, 1 / 7])
    assert run_plots.ema([3.0, 1.0], 0.0) == [3.0, 1.0]


@pytest.mark.slow
def test_rename_tag_delete_and_clean_up(two_runs):
    probe, _ = two_runs
    at = open_page("pages/runs.py")
    at.selectbox(key="runs.manage").set_value(probe.id).run()
    at.text_input(key=f"runs.name.{probe.id}").set_value("renamed probe")
    at.text_input(key=f"runs.tags.{probe.id}").set_value("baseline, demo")
    at.button[[b.label for b in at.button].index("Save")].click().run()
    assert runs.get(probe.id).name == "renamed probe" and runs.get(probe.id).tag_list == ["baseline", "demo"]
    at = open_page("pages/runs.py", {"runs.tag": "baseline"})
    assert at.multiselect(key="runs.overlay").options and not at.exception
    folder = runs.folder(runs.get(probe.id))
    at.selectbox(key="runs.manage").set_value(probe.id).run()
    assert at.button(key=f"runs.delete.{probe.id}").disabled  # not before it is confirmed
    at.checkbox(key=f"runs.sure.{probe.id}").check().run()
    at.button(key=f"runs.delete.{probe.id}").click().run()
    assert not folder.exists() and probe.id not in [r.id for r in runs.all_runs()] and not at.exception
    usage_line = next(t for t in texts(at, "caption") if t.startswith("Data directory"))
    assert "uploads" in usage_line and "datasets" in usage_line and "cache" in usage_line
    at.multiselect(key="usage.folders").set_value(["cache"]).run()
    at.button(key="usage.clean").click().run()
    assert any(t.startswith("Freed ") and "in cache" in t for t in texts(at, "success")) and not at.exception
