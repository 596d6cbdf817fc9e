"""AppTest of the backbones page: a real background measurement, the recommender, compound scaling."""

import time

import pytest
from streamlit.testing.v1 import AppTest

from core import jobs
from core.zoo import worker as measure_worker
from tests.app._util import open_page as open_any
from tests.app._util import texts


def open_page(tab: str = "Measure") -> AppTest:
    return open_any("pages/backbones.py", {"bb.tab": tab})


@pytest.mark.slow
def test_measure_one_model_in_the_background_and_see_it():
    at = open_page()
    assert at.title[0].value == "Compare backbones"
    at.multiselect(key="bb.models").set_value(["mobilenetv3_small_100"]).run()
    at.toggle(key="bb.custom_res").set_value(True).run()
    at.number_input(key="bb.res").set_value(96).run()
    at.button(key="bb.launch").click().run()
    assert not at.exception
    job = jobs.latest(measure_worker.KIND)
    assert (
        job is not None and job.args["models"] == ["mobilenetv3_small_100"] and job.args["resolution"] == 96
    )
    end = time.time() + 120
    while jobs.get(job.id).active and time.time() < end:
        time.sleep(0.5)
    at.run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "resolution (px)" in d.value.columns)
    row = table[(table["model"] == "mobilenetv3_small_100") & (table["resolution (px)"] == 96)].iloc[0]
    assert round(row["params (M)"], 4) == 2.5429 and row["top-1 % (timm)"] == 67.656


def test_bad_resolution_is_refused_with_a_message():
    at = open_page()
    at.toggle(key="bb.custom_res").set_value(True).run()
    field = at.number_input(key="bb.res")
    assert (field.min, field.max) == (32, 1024)  # the widget cannot ask for 8 px; core refuses it too
    from core.zoo.catalog import BackboneError, check_resolution

    with pytest.raises(BackboneError, match="out of range"):
        check_resolution(8)


def test_only_the_open_tab_runs():
    at = open_page()
    assert not at.metric and not any("recipe" in s.value for s in at.success)  # scaling, recommender idle
    assert at.button(key="bb.launch")


def test_the_model_search_answers_on_enter():
    at = open_page()
    at.text_input(key="bb.query").set_value("zzznet").run()
    assert any("No timm model matches 'zzznet'." in w for w in texts(at, "warning"))
    at.text_input(key="bb.query").set_value("resnt50").run()  # a typo: the nearest names offered
    assert any(
        "No timm model matches 'resnt50'; did you mean" in w and "resnet50" in w for w in texts(at, "warning")
    )
    at.text_input(key="bb.query").set_value("regnety_00").run()  # a part: the matches listed
    assert any("timm model(s) contain 'regnety_00': regnety_002" in c for c in texts(at, "caption"))
    at.text_input(key="bb.query").set_value("regnety_008").run()  # an exact name: added to the models
    assert "regnety_008" in at.multiselect(key="bb.models").value
    assert any("regnety_008 is in the models below" in c for c in texts(at, "caption"))
    assert not at.exception and not any("default value" in w for w in texts(at, "warning"))


@pytest.mark.slow
def test_scaling_and_recommender_tabs():
    at = open_page("Compound scaling")
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Depth ×"] == "1.44" and metrics["Width ×"] == "1.21" and metrics["Resolution"] == "296 px"
    at = open_page("Recommender")
    at.number_input(key="rec.budget").set_value(0.0).run()
    assert any("efficientnet_lite0" in s.value and "Fine-tune whole backbone" in s.value for s in at.success)
    at.toggle(key="rec.online").set_value(True).run()  # with the hub: the scenario's first choice
    assert any("resnet50" in s.value and "Fine-tune whole backbone" in s.value for s in at.success)
    at.selectbox(key="rec.scenario").set_value("Edge / real-time").run()
    at.number_input(key="rec.n").set_value(50).run()
    assert any("mobilenetv3_large_100" in s.value and "Linear probe" in s.value for s in at.success)
    assert not at.exception


@pytest.mark.slow
def test_where_the_time_goes_profiles_a_backbone_in_the_background():
    import time

    from core import jobs
    from core.zoo import layers
    from tests.app._util import open_page

    at = open_page("pages/backbones.py", {"bb.tab": "Where the time goes"})
    at.selectbox(key="roof.model").set_value("mobilenetv3_small_100").run()
    at.number_input(key="roof.res.mobilenetv3_small_100").set_value(64).run()
    at.button(key="roof.start").click().run()
    assert not at.exception
    end = time.time() + 180
    while time.time() < end and jobs.latest(layers.KIND).active:
        time.sleep(0.5)
    at.run()
    assert not at.exception and jobs.latest(layers.KIND).status == "done"
    assert [m.label for m in at.metric][:3] == ["Peak compute (fp32)", "DRAM bandwidth", "Ridge point"]
    assert len(at.get("plotly_chart")) == 2
    assert any("One whole forward takes" in i.value and "layers add up to" in i.value for i in at.info)


def test_a_shared_link_reopens_the_model_selection():
    from tests.app._util import open_page

    at = open_page("pages/backbones.py", {"bb.models": ["resnet18", "regnety_002"]})
    # a curated model and one from timm's wider catalogue, both restored from the link
    assert at.multiselect(key="bb.models").value == ["resnet18", "regnety_002"] and not at.exception


def test_offline_the_recommender_picks_a_model_it_marks_trainable_offline(tmp_path, monkeypatch):
    """An empty store, the default (offline): with no budget the pick is the scenario's first backbone this
    machine can fine-tune, marked so in the candidates table, and the better hub-only model is named
    beside it; with a budget and nothing measured it says how many are unmeasured instead of "none
    meets"."""
    from tests.app._util import open_page, texts

    monkeypatch.setenv("ARCHSCOPE_DATA_DIR", str(tmp_path))
    at = open_page("pages/backbones.py", {"bb.tab": "Recommender"})
    assert not texts(at, "warning") or not any("No backbone meets" in w for w in texts(at, "warning"))
    assert any("5 of 5 candidates are not measured on this device yet" in i for i in texts(at, "info"))
    at.number_input(key="rec.budget").set_value(0.0).run()
    picked = next(a for a in texts(at, "success"))
    name = picked.split("**")[1]
    cands = next(d.value for d in at.dataframe if "fine-tune offline" in d.value.columns).set_index(
        "candidate"
    )
    assert bool(cands.loc[name, "fine-tune offline"]) and cands.loc[name, "verdict"] == "recommended"
    assert (
        name == "efficientnet_lite0"
        and cands.loc["resnet50", "verdict"] == "better, but needs the hub (online)"
    )
    assert not at.exception
