"""Pillow plumbing shared by the imaging modules: guarded decode, mode cleanup, budgeted encode.

Everything here is blocking CPU work: call it from a worker thread, never from the event loop.
"""

from __future__ import annotations

import io
import logging
import math
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO

from PIL import Image, ImageFile, ImageOps

from bot.errors import ImageTooLarge, InputError
from bot.i18n import Bytes, Text, Words
from bot.imaging.header import SUPPORTED_MIMES, describe_mime, header_dims, sniff_mime

#: What an input image is called when it has no file name of its own.
IMAGE = Text("imaging.name.image")

log = logging.getLogger(__name__)

PIL_FORMATS = {
    "image/png": "PNG",
    "image/jpeg": "JPEG",
    "image/webp": "WEBP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
}
MIMES = {fmt: mime for mime, fmt in PIL_FORMATS.items()}
# What Pillow raises on malformed or cut-off data (LOAD_TRUNCATED_IMAGES stays off).
DECODE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    IndexError,
)
EXIF_ERRORS: tuple[type[Exception], ...] = (*DECODE_ERRORS, KeyError, TypeError)
_ORIENTATION = 0x0112
_RGB_FAMILY = frozenset({"RGB", "RGBA", "RGBX", "RGBa", "P", "PA"})
_ALPHA_MODES = frozenset({"RGBA", "LA", "La", "PA", "RGBa"})
_HIGH_DEPTH = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_WEBP_METHOD = 0  # libwebp effort 0-6: 0 is ~3x faster than the default 4 for a few % more bytes
_HINT_MIN_PIXELS = 2_000_000  # below this, trying each quality in full is cheap enough
_SAMPLE_BANDS = 16
_BAND_ROWS = 16  # one JPEG block row with 4:2:0 chroma subsampling (and one WebP macroblock row)
_PREDICT_MARGIN = 0.97  # a quality whose guess is within 3% of the budget is too close to call
_PNG_LEVEL = 1  # zlib level 1: a 4096² PNG at Pillow's default level takes seconds
_QUALITY_DROP_PER_5 = 0.8  # optimistic size ratio per 5 quality points (photos; noise drops less)
_SHRINK_SAFETY = 0.95
_MAX_SHRINKS = 8
_FAILED_SHRINK = 0.7  # after an encoder failure, try 30% smaller


@dataclass(frozen=True)
class Decoded:
    """A fully decoded first frame, upright, in RGB or RGBA, with nothing but its colour profile."""

    image: Image.Image
    mime: str
    icc: bytes | None
    rotated: bool
    animated: bool


@dataclass(frozen=True)
class Encoded:
    """Bytes produced by an encoder and the pixel size they hold."""

    data: bytes
    mime: str
    width: int
    height: int


def check_supported(data: bytes, name: Words) -> str:
    """The sniffed mime of data if it is a supported image; otherwise an InputError naming it."""
    if not data:
        raise InputError(Text("imaging.empty", name=name))
    mime = sniff_mime(data)
    if mime in SUPPORTED_MIMES:
        return mime
    if mime is None:
        raise InputError(Text("imaging.not_an_image", name=name))
    raise InputError(Text("imaging.unsupported", name=name, kind=describe_mime(mime)))


def check_pixels(name: Words, size: tuple[int, int], max_pixels: int | None) -> None:
    """Refuse an image whose pixel count is over max_pixels (the decompression-bomb guard)."""
    width, height = size
    if max_pixels is not None and width * height > max_pixels:
        limit = round(max_pixels / 1_000_000, 1)
        raise ImageTooLarge(Text("imaging.pixels", name=name, width=width, height=height, limit=limit))


def open_image(
    data: bytes, name: Words, mime: str, max_pixels: int | None = None, *, source: IO[bytes] | None = None
) -> ImageFile.ImageFile:
    """Open lazily (header only), refusing oversized images before Pillow allocates any pixels.

    data is the whole image, or with source (a file the image is read from) its first bytes.
    """
    if (dims := header_dims(data, mime)) is not None:
        check_pixels(name, dims, max_pixels)
    try:
        image = Image.open(source or io.BytesIO(data), formats=[PIL_FORMATS[mime]])
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(Text("imaging.bomb", name=name)) from e
    except DECODE_ERRORS as e:
        raise InputError(Text("imaging.corrupt", name=name)) from e
    check_pixels(name, image.size, max_pixels)
    return image


def decode(data: bytes, name: Words, max_pixels: int) -> Decoded:
    """Sniff, guard, fully decode the first frame, apply EXIF orientation and normalise the mode."""
    mime = check_supported(data, name)
    return _load(open_image(data, name, mime, max_pixels), name, mime, max_pixels)


def decode_file(source: IO[bytes], head: bytes, name: Words, max_pixels: int) -> Decoded:
    """decode() reading from a file as it is read (a download arriving); head is its first bytes."""
    mime = check_supported(head, name)
    return _load(open_image(head, name, mime, max_pixels, source=source), name, mime, max_pixels)


def _load(image: ImageFile.ImageFile, name: Words, mime: str, max_pixels: int) -> Decoded:
    """Decode an opened image's first frame, upright, in RGB or RGBA."""
    try:
        animated = bool(getattr(image, "is_animated", False))  # seeks, so before load()
        image.load()
    except Image.DecompressionBombError as e:
        raise ImageTooLarge(Text("imaging.bomb", name=name)) from e
    except DECODE_ERRORS as e:
        raise InputError(Text("imaging.corrupt", name=name)) from e
    check_pixels(name, image.size, max_pixels)  # a GIF frame may outgrow its logical screen
    icc = image.info.get("icc_profile") if image.mode in _RGB_FAMILY else None
    upright, rotated = _orient(image)
    return Decoded(normalise(upright), mime, icc or None, rotated, animated)


def _orient(image: Image.Image) -> tuple[Image.Image, bool]:
    """Apply the EXIF Orientation tag; the bool says whether pixels actually moved."""
    try:
        orientation = image.getexif().get(_ORIENTATION, 1)
    except EXIF_ERRORS:
        return image, False  # unreadable EXIF should not reject an otherwise fine image
    if orientation not in range(2, 9):
        return image, False
    return ImageOps.exif_transpose(image), True


def normalise(image: Image.Image) -> Image.Image:
    """RGBA if the image has real (not all-opaque) alpha, else RGB; metadata cleared."""
    if image.mode in _HIGH_DEPTH:
        image = _to_8bit(image)
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        image = _drop_opaque_alpha(image.convert("RGBA"))
    elif image.mode != "RGB":
        image = image.convert("RGB")
    image.info = {}  # EXIF, XMP, comments, text chunks: none of it survives a re-encode
    return image


def _drop_opaque_alpha(rgba: Image.Image) -> Image.Image:
    """RGB when every pixel is fully opaque (the alpha channel says nothing), else unchanged."""
    lowest_alpha = rgba.getchannel("A").getextrema()[0]
    return rgba.convert("RGB") if lowest_alpha == 255 else rgba


def _to_8bit(image: Image.Image) -> Image.Image:
    """Scale 16/32-bit greyscale to 8 bits (Pillow's plain convert would clip to white)."""
    wide = image.convert("F")
    high = wide.getextrema()[1]
    span = 65535.0 if isinstance(high, (int, float)) and high > 255 else 255.0
    return wide.point(lambda v: v * (255.0 / span)).convert("L")


def has_alpha(image: Image.Image) -> bool:
    """Whether a normalised image carries transparency."""
    return image.mode == "RGBA"


def flatten(image: Image.Image) -> Image.Image:
    """Composite RGBA onto white for formats without alpha; RGB passes unchanged."""
    if image.mode != "RGBA":
        return image
    background = Image.new("RGB", image.size, (255, 255, 255))
    background.paste(image, mask=image.getchannel("A"))
    return background


def encode(image: Image.Image, fmt: str, quality: int, icc: bytes | None) -> bytes:
    """Encode once; only the colour profile is written, never EXIF or other metadata."""
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, "JPEG", quality=quality, icc_profile=icc)
    elif fmt == "WEBP":
        image.save(buffer, "WEBP", quality=quality, method=_WEBP_METHOD, icc_profile=icc)
    else:
        image.save(buffer, "PNG", compress_level=_PNG_LEVEL, icc_profile=icc)
    return buffer.getvalue()


def _attempt(image: Image.Image, fmt: str, quality: int, icc: bytes | None) -> bytes | None:
    """Encode once; None if the encoder refuses (libwebp overflows on huge detailed images)."""
    try:
        return encode(image, fmt, quality, icc)
    except (OSError, ValueError) as e:
        log.warning("%s q%d encode of %dx%d failed: %s", fmt, quality, *image.size, e)
        return None


def encode_within(
    image: Image.Image, fmt: str, budget: int, qualities: Sequence[int], icc: bytes | None
) -> Encoded:
    """Encode in at most budget bytes: the best quality a sample says fits, else step down, then downscale.

    For a large image a band sample predicts each quality's size, so the full image is usually
    encoded once; without a prediction (small images) each quality is tried in turn.
    """
    if budget <= 0:
        raise ImageTooLarge(Text("imaging.no_room"))
    guesses = _sample_sizes(image, fmt, qualities, budget, icc)
    measured_q, size = qualities[0], 0.0
    for quality in qualities:
        guess = guesses.get(quality)
        if guess is not None and guess > budget * _PREDICT_MARGIN:
            continue  # the sample says this quality will not fit
        if guess is None and size and _predict(size, measured_q, quality) > budget:
            continue  # even an optimistic guess misses: skip straight to a lower quality
        data = _attempt(image, fmt, quality, icc)
        if data is not None and len(data) <= budget:
            return Encoded(data, MIMES[fmt], image.width, image.height)
        if data is not None:
            measured_q, size = quality, len(data)
    lowest = qualities[-1]
    expected = _expected(guesses.get(lowest), size, measured_q, lowest, budget)
    return _downscale_within(image, fmt, budget, lowest, expected, icc)


def _expected(guess: float | None, size: float, measured_q: int, quality: int, budget: int) -> float:
    """The best estimate of the size at quality: measured, else the sample's, else extrapolated."""
    if size and measured_q == quality:
        estimate = size
    elif guess is not None:
        estimate = guess
    else:
        estimate = _predict(size, measured_q, quality) if size else budget / _FAILED_SHRINK**2
    return max(estimate, budget + 1)


def _sample_sizes(
    image: Image.Image, fmt: str, qualities: Sequence[int], budget: int, icc: bytes | None
) -> dict[int, float]:
    """Predicted full-image bytes per quality, highest first, until one fits ({} for small images).

    JPEG (and roughly WebP) bytes add up per 16-row block band with fixed tables, so evenly spaced
    bands, encoded together, scale up to the whole image's size within a few per cent.
    """
    sample = _band_sample(image)
    if sample is None:
        return {}
    scale = image.width * image.height / (sample.width * sample.height)
    fixed = len(icc or b"")
    guesses: dict[int, float] = {}
    measured = 0
    for quality in qualities:
        if guesses and (bound := _predict(guesses[measured], measured, quality)) > budget * _PREDICT_MARGIN:
            guesses[quality] = bound  # even an optimistic guess misses: no need to measure it
            continue
        data = _attempt(sample, fmt, quality, icc)
        if data is None:
            break
        guesses[quality], measured = (len(data) - fixed) * scale + fixed, quality
        if guesses[quality] <= budget * _PREDICT_MARGIN:
            break
    return guesses


def _band_sample(image: Image.Image) -> Image.Image | None:
    """_SAMPLE_BANDS evenly spaced bands of _BAND_ROWS rows (columns if short), stacked; None if small."""
    rows = _BAND_ROWS * _SAMPLE_BANDS
    across = image.height < rows * 4  # a wide, short image is sampled in columns
    length = image.width if across else image.height
    if image.width * image.height < _HINT_MIN_PIXELS or length < rows * 4:
        return None
    sample = Image.new(image.mode, (rows, image.height) if across else (image.width, rows))
    stride = length // _SAMPLE_BANDS
    for band in range(_SAMPLE_BANDS):
        start = (band * stride + stride // 2) // _BAND_ROWS * _BAND_ROWS  # block-aligned, as encoded
        end, at = start + _BAND_ROWS, band * _BAND_ROWS
        box = (start, 0, end, image.height) if across else (0, start, image.width, end)
        sample.paste(image.crop(box), (at, 0) if across else (0, at))
    return sample


def _predict(size: float, from_quality: int, to_quality: int) -> float:
    """Optimistic size at to_quality given size at from_quality."""
    return size * _QUALITY_DROP_PER_5 ** ((from_quality - to_quality) / 5)


def _downscale_within(
    image: Image.Image, fmt: str, budget: int, quality: int, size: float, icc: bytes | None
) -> Encoded:
    """Shrink by sqrt(budget/size) per round (bytes track pixel count), always from the original."""
    scale = 1.0
    for _ in range(_MAX_SHRINKS):
        scale *= math.sqrt(budget / size) * _SHRINK_SAFETY if size else _FAILED_SHRINK
        smaller = resize_to(image, scaled_size(image.size, scale))
        data = _attempt(smaller, fmt, quality, icc)
        if data is not None and len(data) <= budget:
            return Encoded(data, MIMES[fmt], smaller.width, smaller.height)
        if smaller.width == 1 or smaller.height == 1:
            break
        size = len(data) if data is not None else 0
    raise ImageTooLarge(Text("imaging.cannot_shrink", size=Bytes(budget)))


def scaled_size(size: tuple[int, int], scale: float) -> tuple[int, int]:
    """Scale (width, height) keeping the aspect ratio: the long side sets the short one."""
    width, height = size
    if width >= height:
        new_width = max(1, round(width * scale))
        return new_width, max(1, round(new_width * height / width))
    new_height = max(1, round(height * scale))
    return max(1, round(new_height * width / height)), new_height


def resize_to(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """High-quality LANCZOS resize (reducing_gap speeds up big reductions at no visible cost)."""
    if size == image.size:
        return image
    gap = 3.0 if size[0] < image.width else None
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=gap)
