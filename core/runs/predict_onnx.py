"""Classify images with an Archscope bundle's ONNX model, with nothing but onnxruntime, numpy and Pillow:
    python predict_onnx.py IMAGE [IMAGE ...] [--model model.int8.onnx]
Prints one line per image: path, class, probability. An image that cannot be read is one line on stderr
and the rest go on; the exit code is then 1. The preprocessing is the training's own (copied below),
with the size, mean and std read from bundle.json."""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

HERE = Path(__file__).resolve().parent

# BEGIN pixels
from core.data.pixels import preprocess, reason  # noqa: E402  (in the bundle, this line is the file itself)

# END pixels


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("images", nargs="+", help="image files (JPEG, PNG, BMP, GIF, WebP, TIFF)")
    parser.add_argument("--model", default="model.onnx", help="model.onnx (fp32, default) or model.int8.onnx")
    parser.add_argument(
        "--bundle", default=str(HERE), help="the folder with bundle.json (default: this script's)"
    )
    args = parser.parse_args(argv)
    folder = Path(args.bundle)
    try:
        meta = json.loads((folder / "bundle.json").read_text())
        pre = meta["onnx"]["preprocessing"]
    except (OSError, ValueError, KeyError) as err:
        parser.error(
            f"cannot read the bundle's bundle.json in {folder} ({reason(err)}); "
            "export the run to ONNX again to rewrite it"
        )
    model = Path(args.model) if Path(args.model).is_absolute() else folder / args.model
    if not model.is_file():
        parser.error(f"no model file {model}")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # errors only: no per-initializer notes before the answer
    sess = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
    failed = 0
    for path in args.images:
        try:
            with Image.open(path) as img:
                x = preprocess(img, pre["image_size"], pre["mean"], pre["std"])[None]
        except (OSError, ValueError) as err:  # unreadable, truncated, a folder, not an image
            print(f"{path}: cannot read this image ({reason(err)})", file=sys.stderr)
            failed += 1
            continue
        logits = sess.run(None, {pre["input_name"]: x})[0][0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        print(f"{path}\t{pre['classes'][int(p.argmax())]}\t{float(p.max()):.4f}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
