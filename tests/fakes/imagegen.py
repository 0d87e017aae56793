"""Cheap real test images: pixel sizes per aspect ratio / resolution, encoding and sniffing."""

from __future__ import annotations

import hashlib
import io
import math
import os
from functools import lru_cache

from PIL import Image

Color = tuple[int, int, int]

#: Google's published 1K output sizes for the ten standard aspect ratios.
BASE_1K: dict[str, tuple[int, int]] = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}
STANDARD_RATIOS: tuple[str, ...] = tuple(BASE_1K)
EXTREME_RATIOS: tuple[str, ...] = ("1:4", "4:1", "1:8", "8:1")
ALL_RATIOS: tuple[str, ...] = STANDARD_RATIOS + EXTREME_RATIOS

#: Multipliers applied to the 1K table; "512" is Gemini's spelling of 0.5K.
SIZE_SCALE: dict[str, float] = {"512": 0.5, "0.5K": 0.5, "1K": 1.0, "2K": 2.0, "4K": 4.0}

_FORMATS: dict[str, str] = {"PNG": "PNG", "JPEG": "JPEG", "JPG": "JPEG", "WEBP": "WEBP"}
MIME_BY_FORMAT: dict[str, str] = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
EXT_BY_FORMAT: dict[str, str] = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_ONE_MEGAPIXEL = 1024 * 1024


def parse_ratio(ratio: str) -> tuple[int, int]:
    """Split "W:H" into positive integers, raising ValueError otherwise."""
    left, sep, right = ratio.partition(":")
    if not sep or not left.isdigit() or not right.isdigit() or int(left) < 1 or int(right) < 1:
        raise ValueError(f"invalid aspect ratio {ratio!r}")
    return int(left), int(right)


def _extreme_1k(ratio: str) -> tuple[int, int]:
    """Approximate 1 MP size with the exact ratio, the short side a multiple of 16."""
    rw, rh = parse_ratio(ratio)
    short_is_width = rw < rh
    long_per_short = max(rw, rh) // min(rw, rh)
    short = 16 * round(math.sqrt(_ONE_MEGAPIXEL / long_per_short) / 16)
    long = short * long_per_short
    return (short, long) if short_is_width else (long, short)


def dims_for(ratio: str = "1:1", size: str = "1K") -> tuple[int, int]:
    """Pixel size for an aspect ratio and a resolution tier ("512"/"0.5K"/"1K"/"2K"/"4K")."""
    scale = SIZE_SCALE.get(size.upper())
    if scale is None:
        raise ValueError(f"invalid image size {size!r}")
    if ratio in BASE_1K:
        width, height = BASE_1K[ratio]
    elif ratio in EXTREME_RATIOS:
        width, height = _extreme_1k(ratio)
    else:
        raise ValueError(f"unsupported aspect ratio {ratio!r}")
    return int(width * scale), int(height * scale)


def nearest_ratio(width: int, height: int, allowed: tuple[str, ...] = STANDARD_RATIOS) -> str:
    """The allowed ratio closest (in log space) to width:height."""
    target = math.log(width / height)

    def distance(ratio: str) -> float:
        rw, rh = parse_ratio(ratio)
        return abs(math.log(rw / rh) - target)

    return min(allowed, key=distance)


def color_for(seed: str) -> Color:
    """A deterministic RGB colour derived from a seed string."""
    digest = hashlib.sha256(seed.encode()).digest()
    return digest[0], digest[1], digest[2]


def normalize_format(fmt: str) -> str:
    """Canonical Pillow format name for PNG/JPEG/JPG/WEBP (any case)."""
    try:
        return _FORMATS[fmt.upper()]
    except KeyError:
        raise ValueError(f"unsupported image format {fmt!r}") from None


def _save(image: Image.Image, fmt: str, noisy: bool) -> bytes:
    """Encode a Pillow image with settings tuned for speed."""
    buffer = io.BytesIO()
    if fmt == "PNG":
        big = image.width * image.height > 4 * _ONE_MEGAPIXEL
        level = 0 if noisy else (1 if big else 6)
        image.save(buffer, "PNG", compress_level=level)
    elif fmt == "JPEG":
        image.save(buffer, "JPEG", quality=95 if noisy else 90)
    else:
        image.save(buffer, "WEBP", quality=80, method=0)
    return buffer.getvalue()


@lru_cache(maxsize=48)
def _solid(width: int, height: int, fmt: str, color: Color) -> bytes:
    """Encode (and memoise) a solid-colour image."""
    return _save(Image.new("RGB", (width, height), color), fmt, noisy=False)


def make_image(
    width: int,
    height: int,
    fmt: str = "PNG",
    color: Color = (128, 128, 128),
    noisy: bool = False,
) -> bytes:
    """Encoded image bytes of the given size; noisy=True gives incompressible random pixels."""
    if width < 1 or height < 1:
        raise ValueError("image dimensions must be positive")
    fmt = normalize_format(fmt)
    if not noisy:
        return _solid(width, height, fmt, (color[0], color[1], color[2]))
    raw = os.urandom(width * height * 3)
    return _save(Image.frombytes("RGB", (width, height), raw), fmt, noisy=True)


def sniff_mime(data: bytes) -> str | None:
    """MIME type from magic bytes (png, jpeg, webp, gif, bmp, heic/heif), else None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:2] == b"BM" and len(data) > 26:
        return "image/bmp"
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        return "image/heic" if data[8:12].startswith(b"he") else "image/heif"
    return None


def image_dims(data: bytes) -> tuple[int, int] | None:
    """Pixel size read from the image header with Pillow, or None if unreadable."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            return image.size
    except Exception:
        return None
