"""Turning any allow-listed image into 8-bit RGB, whatever its bit depth, and opening untrusted bytes safely."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")


def to_rgb8(img: Image.Image) -> Image.Image:
    """8-bit RGB. 16-bit greyscale is scaled (65535 -> 255), not clipped; 32-bit integer images are scaled from
    16 bits when they fit, else by their own range; float images in [0, 1] are scaled by 255, others by their
    own range. Palette, alpha and CMYK images go through Pillow's own conversion."""
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
    else:
        return img.convert("RGB")
    grey = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L")
    return grey.convert("RGB")


def _stretch(arr: np.ndarray) -> np.ndarray:
    low, high = float(arr.min()), float(arr.max())
    return (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)


def open_image(data: bytes, max_pixels: int | None = None) -> Image.Image:
    """A user's upload as 8-bit RGB. The pixel count is checked from the header before anything is decoded;
    a refused or undecodable file raises ValueError with the reason."""
    from core.data.ingest import MAX_PIXELS, check_image
    check_image(io.BytesIO(data), max_pixels or MAX_PIXELS)
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return to_rgb8(img)


def thumbnail(path: str, size: int = 96) -> np.ndarray:
    """An (H, W, 3) uint8 preview of an image file, any bit depth (st.image cannot show 16-bit or float)."""
    with Image.open(path) as img:
        rgb = to_rgb8(img)
    rgb.thumbnail((size, size))
    return np.asarray(rgb)
