"""The best-epoch rule (ties in val top-1 go to the lower val loss, then the later epoch) and a bundle that
carries its preprocessing: timm's own ``resolve_data_config`` reproduces the training transform, and
predict.py runs as is."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from core.data import demo
from core.finetune import trainer
from core.finetune.bundle import BEST_RULE, Predictor
from core.finetune.config import TrainConfig
from core.finetune.trainer import better, train


@pytest.mark.parametrize(
    "top1, loss, best_top1, best_loss, expected",
    [
        (0.9, 0.5, 0.8, 0.1, True),  # higher top-1 wins whatever the loss
        (0.8, 0.1, 0.9, 0.5, False),  # lower top-1 loses whatever the loss
        (1.0, 0.12, 1.0, 0.59, True),  # a tie goes to the lower val loss
        (1.0, 0.59, 1.0, 0.12, False),
        (1.0, 0.3, 1.0, 0.3, True),  # a full tie goes to the later epoch
    ],
)
def test_the_tie_rule(top1, loss, best_top1, best_loss, expected):
    assert better(top1, loss, best_top1, best_loss) is expected


TINY = dict(data="demo", demo_per_class=10, demo_size=32, image_size=32, batch_size=8, threads=1, epochs=3)


def scripted(monkeypatch, scores):
    """Every epoch's evaluation returns the next (top-1, loss) of ``scores`` (100% at every epoch while the
    loss falls 0.59 -> 0.12 is the case this guards)."""
    real = trainer.for_recipe

    def wrapped(recipe):
        cls = real(recipe)

        def make(*args, **kwargs):
            strategy = cls(*args, **kwargs)
            inner, left = strategy.evaluate, list(scores)

            def evaluate():
                ev = inner()
                ev["top1"], ev["loss"] = left.pop(0)
                return ev

            strategy.evaluate = evaluate
            return strategy

        return make

    monkeypatch.setattr(trainer, "for_recipe", wrapped)


@pytest.fixture(scope="module")
def tied_run(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    scripted(mp, [(1.0, 0.59), (1.0, 0.30), (1.0, 0.12)])
    try:
        out = tmp_path_factory.mktemp("tied")
        return train(TrainConfig(recipe="finetune_top", **TINY), out)
    finally:
        mp.undo()


@pytest.mark.slow
def test_a_tie_at_100_percent_exports_the_epoch_with_the_lowest_val_loss(tied_run):
    assert tied_run.best_epoch == 3 and tied_run.best_top1 == 1.0
    meta = json.loads((Path(tied_run.export_dir) / "bundle.json").read_text())
    assert meta["epoch"] == 3 and meta["val_loss"] == pytest.approx(0.12) and meta["epoch_rule"] == BEST_RULE
    assert (
        "chosen by the highest val top-1; a tie goes to the lower val loss"
        in (Path(tied_run.export_dir) / "README.md").read_text()
    )


@pytest.mark.slow
def test_a_later_epoch_with_a_higher_loss_does_not_replace_the_best(tmp_path, monkeypatch):
    scripted(monkeypatch, [(0.5, 0.9), (0.8, 0.4), (0.8, 0.6)])
    result = train(TrainConfig(recipe="linear_probe", **TINY), tmp_path)
    assert result.best_epoch == 2 and result.best_top1 == 0.8


@pytest.mark.slow
def test_timm_resolve_data_config_reproduces_the_training_preprocessing(tied_run):
    import timm
    from timm.data import resolve_data_config

    folder = Path(tied_run.export_dir)
    meta = json.loads((folder / "bundle.json").read_text())
    model = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    cfg = resolve_data_config(model=model)
    assert (
        tuple(cfg["input_size"]) == (3, 32, 32)
        and cfg["interpolation"] == "bilinear"
        and cfg["crop_pct"] == 1.0
    )
    assert cfg["crop_mode"] == "center"
    assert list(cfg["mean"]) == pytest.approx(meta["mean"]) and list(cfg["std"]) == pytest.approx(meta["std"])
    assert model.pretrained_cfg["label_names"] == meta["classes"] and model.num_classes == len(
        meta["classes"]
    )
    # the weights are the bundle's: timm's loader and Archscope's Predictor give the same logits on one input
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        assert torch.allclose(model(x), Predictor(folder).model(x), atol=1e-5)


@pytest.mark.slow
def test_the_bundles_predict_py_runs_as_is_and_agrees_with_the_predictor(tied_run, tmp_path):
    folder = Path(tied_run.export_dir)
    image = next((demo.generate(per_class=10, size=32) / "circle").glob("*.png"))
    out = subprocess.run(
        [sys.executable, "-W", "ignore", str(folder / "predict.py"), str(image), "--top", "3"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    rows = [line.split("\t") for line in out.stdout.strip().splitlines()]
    assert len(rows) == 3 and all(r[0] == str(image) for r in rows)
    expected = dict(Predictor(folder).top_k(image, 3))
    assert rows[0][1] == max(expected, key=expected.get)
    for _, label, p in rows:
        assert float(p) == pytest.approx(expected[label], abs=0.02)
