"""The one preprocessing, defined once: any image -> upright 8-bit RGB -> the shorter side resized to the
model's size (bilinear) -> a centre crop -> [0, 1] -> (x - mean) / std, channels first, float32.

Training, evaluation, "try an image", the bundle's Predictor and the bundle's plain scripts (predict.py
and predict_onnx.py, which carry this file verbatim so they run without Archscope) all call these
functions. So this file imports nothing but numpy and Pillow, and is written for any Python 3 that runs
them. ``reason`` is how those scripts name an image they cannot read."""

import numpy as np
from PIL import Image, ImageOps

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
MAX_RESIZED_BYTES = 256 * 2**20  # the intermediate image a shorter-side resize may allocate


def _stretch(arr):
    low, high = float(arr.min()), float(arr.max())
    return (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)


def to_rgb8(img):
    """8-bit RGB. 16-bit greyscale is scaled (65535 -> 255), not clipped; 32-bit integer images are scaled
    from 16 bits when they fit, else by their own range; float images in [0, 1] are scaled by 255,
    others by their own range. Palette, alpha and CMYK images go through Pillow's own conversion (alpha
    dropped)."""
    if img.mode in SIXTEEN_BIT:
        arr = np.asarray(img, dtype=np.float64) / 257.0
    elif img.mode == "I":
        arr = np.asarray(img, dtype=np.float64)
        if arr.min() < 0 or arr.max() > 65535:
            arr = _stretch(arr)
        elif arr.max() > 255:
            arr = arr / 257.0
    elif img.mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError("float image holds NaN or infinite values")
        arr = arr * 255.0 if arr.min() >= 0 and arr.max() <= 1 else _stretch(arr)
    elif img.mode == "P" and "transparency" in img.info:
        return img.convert("RGBA").convert("RGB")  # a palette with alpha: through RGBA, as Pillow advises
    else:
        return img.convert("RGB")
    grey = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    return grey.convert("RGB")


def orientation(img):
    """The EXIF orientation tag (1 = upright; 0 when the file has none or it cannot be read)."""
    try:
        return int(img.getexif().get(0x0112, 0) or 0)
    except Exception:  # noqa: BLE001  a damaged EXIF block is no orientation
        return 0


def upright(img):
    """The image as a viewer shows it: EXIF orientation applied (phone photos are stored sideways)."""
    if orientation(img) in (0, 1):
        return img
    return ImageOps.exif_transpose(img)


def resized_size(width, height, size):
    """The size the shorter-side resize to ``size`` gives (before the centre crop)."""
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def check_resize(width, height, size):
    """Refuses a resize whose intermediate RGB image would allocate beyond the budget."""
    w, h = resized_size(width, height, size)
    if w * h * 3 > MAX_RESIZED_BYTES:
        raise ValueError(
            f"resizing {width:,} x {height:,} px to {size} px on its shorter side needs a {w:,} x {h:,} "
            f"image ({w * h * 3 / 2**20:,.0f} MiB), over the limit of "
            f"{MAX_RESIZED_BYTES / 2**20:.0f} MiB"
        )


def resize_crop(img, size):
    """Upright 8-bit RGB, shorter side resized to ``size`` (bilinear), centre-cropped to size x size: a (3,
    S, S) uint8 array. A resize beyond the budget raises ValueError."""
    img = to_rgb8(upright(img))
    w, h = img.size
    check_resize(w, h, size)
    img = img.resize(resized_size(w, h, size), Image.BILINEAR)
    w, h = img.size
    left, top = (w - size) // 2, (h - size) // 2
    img = img.crop((left, top, left + size, top + size))
    return np.asarray(img, dtype=np.uint8).transpose(2, 0, 1).copy()


def normalize(chw_uint8, mean, std):
    """(3, S, S) or (N, 3, S, S) uint8 -> float32: divided by 255, then (x - mean) / std per channel, in
    that order (the training loop does the same three float32 operations on its device)."""
    x = np.asarray(chw_uint8).astype(np.float32) / np.float32(255)
    m = np.asarray(mean, np.float32).reshape(3, 1, 1)
    s = np.asarray(std, np.float32).reshape(3, 1, 1)
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


def preprocess(img, image_size, mean, std):
    """One image (an opened Pillow image) as the model's (3, S, S) float32 input."""
    return normalize(resize_crop(img, image_size), mean, std)


def reason(err):
    """An image's failure in a few words: 'truncated', 'is a folder', 'not an image', or the error's first
    line."""
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    if isinstance(err, IsADirectoryError):
        return "it is a folder"
    if isinstance(err, FileNotFoundError):
        return "no such file"
    if "truncated" in text.lower():
        return "truncated"
    if "cannot identify image" in text:
        return "not an image"
    return text
