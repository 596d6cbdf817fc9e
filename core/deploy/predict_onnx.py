"""Classify images with an Archscope bundle's ONNX model, with nothing but onnxruntime, numpy and Pillow:
    python predict_onnx.py IMAGE [IMAGE ...] [--model model.int8.onnx]
Prints one line per image: path, class, probability. The preprocessing is the training's, read from bundle.json."""
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image, ImageOps

HERE = Path(__file__).resolve().parent


def preprocess(path, pre):
    """Upright, RGB, shorter side to image_size (bilinear), centre crop, [0, 1], mean/std, NCHW float32."""
    with Image.open(path) as img:
        img = ImageOps.exif_transpose(img).convert("RGB")
    size = pre["image_size"]
    w, h = img.size
    scale = size / min(w, h)
    img = img.resize((max(size, round(w * scale)), max(size, round(h * scale))), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    x = np.asarray(img.crop((left, top, left + size, top + size)), dtype=np.uint8).astype(np.float32) / 255.0
    x = (x - np.asarray(pre["mean"], np.float32)) / np.asarray(pre["std"], np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)


def main(argv):
    model = "model.onnx"
    if "--model" in argv:
        i = argv.index("--model")
        model, argv = argv[i + 1], argv[:i] + argv[i + 2:]
    meta = json.loads((HERE / "bundle.json").read_text())
    pre = meta["onnx"]["preprocessing"]
    sess = ort.InferenceSession(str(HERE / model), providers=["CPUExecutionProvider"])
    for path in argv:
        logits = sess.run(None, {pre["input_name"]: preprocess(path, pre)})[0][0]
        p = np.exp(logits - logits.max())
        p /= p.sum()
        print(f"{path}\t{pre['classes'][int(p.argmax())]}\t{float(p.max()):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
