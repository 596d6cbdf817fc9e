"""Opening untrusted images safely and the same way everywhere: the limits checked from the header before
anything is decoded (pixel count, aspect ratio, decoded bytes, and the bytes a resize would allocate),
EXIF orientation applied, and any allow-listed image turned into 8-bit RGB whatever its bit depth (the
conversions themselves are ``core.data.pixels``, the one preprocessing)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import IO, Iterator

import numpy as np
from PIL import Image, UnidentifiedImageError

from core.data.pixels import (  # noqa: F401  (re-exported)
    SIXTEEN_BIT,
    check_resize,
    orientation,
    resize_crop,
    resized_size,
    to_rgb8,
    upright,
)
from core.errors import first_line

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "BMP", "GIF", "WEBP", "TIFF"})
MAX_PIXELS = 50_000_000
MAX_ASPECT = 50.0  # longer side / shorter side: over this, a square crop keeps almost nothing
MAX_DECODED_BYTES = 160 * 2**20  # the decoded frame in its own mode: 50 Mpx of RGB fit, 50 Mpx of RGBA not
SWAPS_SIDES = (5, 6, 7, 8)  # EXIF orientations that rotate by 90 degrees
_MODE_BYTES = {
    "1": 1,
    "L": 1,
    "P": 1,
    "RGB": 3,
    "RGBA": 4,
    "CMYK": 4,
    "YCbCr": 3,
    "LA": 2,
    "PA": 2,
    "I": 4,
    "F": 4,
    "I;16": 2,
    "I;16B": 2,
    "I;16L": 2,
    "I;16N": 2,
    "LAB": 3,
    "HSV": 3,
    "RGBX": 4,
    "La": 2,
    "RGBa": 4,
}


def check_header(width: int, height: int, mode: str, max_pixels: int = MAX_PIXELS) -> None:
    """Refuses, from the header alone, an image whose aspect ratio is extreme or whose decoded frame is too
    big."""
    if width < 1 or height < 1:
        raise ValueError(f"empty image ({width} x {height} px)")
    long_side, short_side = max(width, height), min(width, height)
    if long_side / short_side > MAX_ASPECT:
        raise ValueError(
            f"extreme aspect ratio 1:{long_side / short_side:,.0f} ({width:,} x {height:,} px); "
            f"the limit is 1:{MAX_ASPECT:.0f}, since a square crop would keep almost nothing"
        )
    if width * height > max_pixels:
        raise ValueError(f"{width * height:,} pixels is over the limit of {max_pixels:,}; it was not decoded")
    decoded = width * height * _MODE_BYTES.get(mode, 4)
    if decoded > MAX_DECODED_BYTES:
        raise ValueError(
            f"decoding it would take {decoded / 2**20:,.0f} MiB, over the limit of "
            f"{MAX_DECODED_BYTES / 2**20:.0f} MiB; it was not decoded"
        )


@contextlib.contextmanager
def _opened(source: Path | str | IO[bytes], max_pixels: int) -> Iterator[Image.Image]:
    """The image, opened and decoded only after its format and header passed the checks; ValueError
    otherwise."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source) as img:
                if img.format not in ALLOWED_FORMATS:
                    raise ValueError(f"format {img.format} is not allowed")
                check_header(*img.size, img.mode, max_pixels)
                img.load()
                yield img
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ValueError(f"decompression bomb refused ({err}); it was not decoded") from err
    except UnidentifiedImageError as err:
        raise ValueError("not an image") from err
    except OSError as err:
        raise ValueError(f"truncated or corrupt image ({first_line(err)})") from err
    finally:
        Image.MAX_IMAGE_PIXELS = old


def check_image(source: Path | str | IO[bytes], max_pixels: int = MAX_PIXELS) -> tuple[int, int]:
    """(width, height), as shown (EXIF orientation applied), of a fully decodable, allow-listed image
    within the limits; raises ValueError with the reason. The limits are checked from the header, before
    anything is decoded; Pillow's own bomb check uses ``max_pixels`` too."""
    with _opened(source, max_pixels) as img:
        if img.mode == "F":
            to_rgb8(img)  # refuses NaN / infinite values
        w, h = img.size
        return (h, w) if orientation(img) in SWAPS_SIDES else (w, h)


def open_checked(source: Path | str | IO[bytes], max_pixels: int = MAX_PIXELS) -> Image.Image:
    """An image within the limits of ``check_image``, decoded once, upright, as 8-bit RGB."""
    with _opened(source, max_pixels) as img:
        return to_rgb8(upright(img))


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """A user's upload (bytes) as upright 8-bit RGB; a refused or undecodable file raises ValueError with
    the reason."""
    return open_checked(io.BytesIO(data), max_pixels)


def load_resized(path: str | Path, size: int) -> np.ndarray:
    """One image file, checked, upright, resized and centre-cropped (see ``resize_crop``)."""
    return resize_crop(open_checked(path), size)


def thumbnail(path: str | Path, size: int = 96) -> np.ndarray:
    """An (H, W, 3) uint8 preview of an image file, upright, any bit depth (st.image cannot show 16-bit or
    float). A file that fails the checks gives a grey square."""
    try:
        rgb = open_checked(path)
    except ValueError:
        return np.full((size, size, 3), 128, dtype=np.uint8)
    rgb.thumbnail((size, size))
    return np.asarray(rgb)
