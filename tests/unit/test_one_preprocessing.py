"""One preprocessing, defined once (core/data/pixels.py): every path that feeds a model an image
(training's decoded cache and normaliser, evaluation and the ONNX export, "try an image", the bundle's
Predictor, and the bundle's plain predict.py and predict_onnx.py, which carry pixels.py verbatim) gives
the same input tensor for the same odd image, to the last bit."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from core.data.cache import decoded
from core.data.images import open_image
from core.data.preprocess import Preprocessing, embed_pixels
from core.finetune import bundle
from core.finetune.batches import Normalizer
from core.runs.export import predict_script

SIZE = 32
MEAN, STD = (0.5, 0.4, 0.3), (0.25, 0.2, 0.15)


def odd_images(folder: Path) -> dict[str, Path]:
    """16-bit greyscale, a palette with a transparent index, CMYK, an EXIF-rotated photo and a 1 x 40
    sliver."""
    rng = np.random.default_rng(0)
    out = {}
    grey16 = Image.fromarray((rng.integers(0, 65535, (48, 40))).astype(np.uint16))
    assert grey16.mode in ("I;16", "I")
    out["16-bit.png"] = grey16
    pal = Image.fromarray(rng.integers(0, 255, (40, 52, 3)).astype(np.uint8)).convert(
        "P", palette=Image.ADAPTIVE
    )
    pal.info["transparency"] = 3
    out["palette-alpha.png"] = pal
    out["cmyk.jpg"] = Image.fromarray(rng.integers(0, 255, (44, 36, 4)).astype(np.uint8), "CMYK")
    rotated = Image.fromarray(rng.integers(0, 255, (30, 60, 3)).astype(np.uint8))
    exif = rotated.getexif()
    exif[0x0112] = 6
    out["exif-rotated.jpg"] = (rotated, exif)
    out["sliver-1x40.png"] = Image.fromarray(rng.integers(0, 255, (40, 1, 3)).astype(np.uint8))
    paths = {}
    for name, img in out.items():
        path = folder / name
        if isinstance(img, tuple):
            img[0].save(path, exif=img[1].tobytes())
        elif name.endswith(".png") and "transparency" in img.info:
            img.save(path, transparency=img.info["transparency"])
        else:
            img.save(path)
        paths[name] = path
    return paths


def load_script(text: str, name: str, folder: Path):
    path = folder / f"{name}.py"
    path.write_text(text)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    return odd_images(tmp_path_factory.mktemp("odd"))


@pytest.fixture(scope="module")
def paths_inputs(images, tmp_path_factory) -> dict[str, dict[str, np.ndarray]]:
    """Each path's input tensor for each image."""
    folder = tmp_path_factory.mktemp("scripts")
    pre = Preprocessing(SIZE, MEAN, STD)
    model = torch.nn.Linear(1, 1)
    model.pretrained_cfg = {"mean": MEAN, "std": STD}
    normalizer = Normalizer(model, torch.device("cpu"), channels_last=False)
    names = sorted(images)
    cached = decoded(images[names[0]].parent, names, SIZE, on_disk=True)  # training's decoded cache
    training = normalizer(cached).numpy()
    export_dir = bundle.export(
        folder / "run", torch.nn.Linear(2, 2), "test_resnet", ("a", "b"), SIZE, MEAN, STD
    )
    predictor = bundle.Predictor.__new__(bundle.Predictor)  # its preprocessing, not a model
    predictor.meta = __import__("json").loads((export_dir / "bundle.json").read_text())
    predictor.preprocessing = Preprocessing.from_dict(predictor.meta["preprocessing"])
    predict_py = load_script(
        (export_dir / "predict.py").read_text().replace("import timm\n", ""), "bundle_predict", folder
    )
    predict_onnx = load_script(
        predict_script().replace("import onnxruntime as ort\n", ""), "bundle_predict_onnx", folder
    )
    out: dict[str, dict[str, np.ndarray]] = {}
    for i, name in enumerate(names):
        path = images[name]
        with Image.open(path) as img:
            from_predict = predict_py.preprocess(img, SIZE, list(MEAN), list(STD))
        with Image.open(path) as img:
            from_onnx_script = predict_onnx.preprocess(img, SIZE, list(MEAN), list(STD))
        out[name] = {
            "training (decoded cache + Normalizer)": training[i],
            "evaluation and ONNX export (Preprocessing.batch)": pre.batch([path])[0],
            "try an image (upload bytes)": pre.array(open_image(path.read_bytes())),
            "bundle.Predictor": predictor.preprocessing.array(path),
            "predict.py": from_predict,
            "predict_onnx.py": from_onnx_script,
        }
    return out


@pytest.mark.parametrize(
    "name", ["16-bit.png", "palette-alpha.png", "cmyk.jpg", "exif-rotated.jpg", "sliver-1x40.png"]
)
def test_every_path_feeds_the_model_the_same_tensor(paths_inputs, name):
    inputs = paths_inputs[name]
    reference = inputs["training (decoded cache + Normalizer)"]
    assert reference.shape == (3, SIZE, SIZE) and reference.dtype == np.float32
    for path, x in inputs.items():
        assert x.shape == reference.shape and x.dtype == np.float32, path
        assert np.array_equal(x, reference), f"{path} differs by {np.abs(x - reference).max():.3g}"


def test_sixteen_bit_is_scaled_not_clipped(images):
    """The bug this replaced: Pillow's convert('RGB') clips 16-bit values to 255, so the picture came out
    nearly white in predict_onnx.py while training saw it scaled. Its mean now sits near mid-grey, as
    the data does."""
    x = Preprocessing(SIZE, (0, 0, 0), (1, 1, 1)).array(images["16-bit.png"])
    assert 0.35 < float(x.mean()) < 0.65
    with Image.open(images["16-bit.png"]) as img:
        clipped = np.asarray(img.convert("RGB"), np.float32) / 255
    assert clipped.mean() > 0.95  # what the old script fed the model


def test_exif_rotation_swaps_the_sides_everywhere(images):
    with Image.open(images["exif-rotated.jpg"]) as img:
        assert img.size == (60, 30)
    from core.data.pixels import upright

    with Image.open(images["exif-rotated.jpg"]) as img:
        assert upright(img).size == (30, 60)


def test_the_bundled_scripts_carry_pixels_verbatim():
    import inspect

    from core.data import pixels

    body = inspect.getsource(pixels).split('"""', 2)[2].strip()
    for script in (embed_pixels(bundle.PREDICT), predict_script()):
        assert body in script and "from core." not in script and "import core" not in script
        compile(script, "script", "exec")


def test_preprocessing_record_round_trips():
    import timm

    pre = Preprocessing.for_model("inception_v3", 96)  # timm's Inception uses 0.5 / 0.5
    assert pre.mean == (0.5, 0.5, 0.5) and pre.std == (0.5, 0.5, 0.5)
    assert Preprocessing.from_dict(pre.to_dict()) == pre
    # what training reads off the built model is what an export reads off the architecture's name
    assert Preprocessing.for_model(timm.create_model("inception_v3", pretrained=False), 96) == pre
    assert Preprocessing.for_model("resnet18", 64).mean == (0.485, 0.456, 0.406)
    assert sys.modules["core.data.pixels"].__doc__.startswith("The one preprocessing")
