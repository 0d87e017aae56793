"""The imaging operations: inputs prepared for a model, local upscales, results fitted for upload.

Every public function here is blocking Pillow work; the *_async wrappers run it in the image pool
(bot.imaging.pool) so the event loop never decodes or encodes a pixel.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageFilter

from bot.errors import ImageTooLarge, InputError
from bot.i18n import Bytes, Text, Words
from bot.imaging.codec import (
    IMAGE,
    Decoded,
    Encoded,
    check_supported,
    decode,
    encode,
    encode_within,
    flatten,
    has_alpha,
    open_image,
    resize_to,
    scaled_size,
)
from bot.imaging.fit import UPLOAD_MARGIN, FittedImage, fair_share, fit_for_upload
from bot.imaging.header import SUPPORTED_MIMES, header_dims, sniff_mime
from bot.imaging.pool import run_image

__all__ = [
    "SUPPORTED_MIMES",
    "FittedImage",
    "ImageInfo",
    "PreparedImage",
    "fit_for_upload",
    "fit_for_upload_async",
    "image_dims",
    "nearest_ratio",
    "prepare_input",
    "prepare_input_async",
    "probe",
    "sniff_mime",
    "upscale_local",
    "upscale_local_async",
]

DEFAULT_ACCEPT = frozenset({"image/png", "image/jpeg", "image/webp"})
INPUT_QUALITIES = (92, 85, 80, 75)
UPSCALE_JPEG_QUALITY = 93
_SHARPEN = ImageFilter.UnsharpMask(radius=1.2, percent=60, threshold=2)


@dataclass(frozen=True)
class ImageInfo:
    """What the header says: format and stored pixel size (before any EXIF rotation)."""

    mime: str
    width: int
    height: int


@dataclass(frozen=True)
class PreparedImage:
    """An input image ready to send to a provider."""

    data: bytes
    mime: str
    width: int
    height: int
    reencoded: bool


def probe(data: bytes, *, name: Words = IMAGE) -> ImageInfo:
    """Format and size from the header only (no pixel decoding); InputError for non-images."""
    mime = check_supported(data, name)
    try:
        width, height = open_image(data, name, mime).size
    except ImageTooLarge:
        if (dims := header_dims(data, mime)) is None:
            raise
        width, height = dims  # too big for Pillow to open, but the header is still honest
    return ImageInfo(mime, width, height)


def image_dims(data: bytes) -> tuple[int, int]:
    """(width, height) from the header only."""
    info = probe(data)
    return info.width, info.height


def prepare_input(
    data: bytes,
    *,
    name: Words = IMAGE,
    max_bytes: int = 25 * 1024 * 1024,
    max_pixels: int = 64_000_000,
    max_side: int = 4096,
    max_out_bytes: int = 7 * 1024 * 1024,
    accept: frozenset[str] = DEFAULT_ACCEPT,
) -> PreparedImage:
    """Validate a user's image and make it provider-ready, passing the bytes through when it can."""
    if not data:
        raise InputError(Text("imaging.empty", name=name))
    if len(data) > max_bytes:
        raise ImageTooLarge(Text("imaging.too_big", name=name, size=Bytes(len(data)), limit=Bytes(max_bytes)))
    decoded = decode(data, name, max_pixels)
    image = decoded.image
    resized = max(image.size) > max_side
    if resized:
        image = resize_to(image, scaled_size(image.size, max_side / max(image.size)))
    untouched = not (decoded.rotated or decoded.animated or resized)
    if untouched and decoded.mime in accept and len(data) <= max_out_bytes:
        return PreparedImage(data, decoded.mime, image.width, image.height, reencoded=False)
    out = _encode_input(image, decoded.icc, accept, max_out_bytes)
    return PreparedImage(out.data, out.mime, out.width, out.height, reencoded=True)


def _encode_input(image: Image.Image, icc: bytes | None, accept: frozenset[str], budget: int) -> Encoded:
    """Re-encode an input: keep real alpha (PNG, else WebP), otherwise JPEG quality 92."""
    if has_alpha(image) and accept & {"image/png", "image/webp"}:
        return _encode_alpha(image, icc, accept, budget)
    for mime, fmt in (("image/jpeg", "JPEG"), ("image/webp", "WEBP"), ("image/png", "PNG")):
        if mime in accept:
            qualities = (0,) if fmt == "PNG" else INPUT_QUALITIES
            return encode_within(flatten(image), fmt, budget, qualities, icc)
    raise ValueError(f"accept must include PNG, JPEG or WebP, not {sorted(accept)}")


def _encode_alpha(image: Image.Image, icc: bytes | None, accept: frozenset[str], budget: int) -> Encoded:
    """Lossless PNG when it fits; lossy WebP (which keeps alpha) when PNG is too big."""
    if "image/webp" not in accept:
        return encode_within(image, "PNG", budget, (0,), icc)
    if "image/png" in accept:
        data = encode(image, "PNG", 0, icc)
        if len(data) <= budget:
            return Encoded(data, "image/png", image.width, image.height)
    return encode_within(image, "WEBP", budget, INPUT_QUALITIES, icc)


def upscale_local(
    data: bytes, factor: int, *, max_side: int = 8192, name: Words = IMAGE
) -> tuple[bytes, str]:
    """Offline upscale: LANCZOS by factor (longest side ≤ max_side), mild sharpening."""
    if factor < 1:
        raise ValueError(f"upscale factor must be at least 1, not {factor}")
    mime = check_supported(data, name)
    stored_size = header_dims(data, mime) or open_image(data, name, mime).size
    _refuse_if_too_large(name, stored_size, max_side)  # before decoding a single pixel
    decoded = decode(data, name, max_side * max_side)
    image = decoded.image
    _refuse_if_too_large(name, image.size, max_side)
    scale = min(float(factor), max_side / max(image.size))
    bigger = _sharpen(resize_to(image, scaled_size(image.size, scale)))
    if has_alpha(bigger):
        return encode(bigger, "PNG", 0, decoded.icc), "image/png"
    return encode(bigger, "JPEG", UPSCALE_JPEG_QUALITY, decoded.icc), "image/jpeg"


def _refuse_if_too_large(name: Words, size: tuple[int, int], max_side: int) -> None:
    """InputError when the longest side is already at or over max_side."""
    if max(size) >= max_side:
        width, height = size
        too_large = Text(
            "imaging.upscale.too_large", name=name, width=width, height=height, max_side=max_side
        )
        raise InputError(too_large)


def _sharpen(image: Image.Image) -> Image.Image:
    """Unsharp-mask the colour channels only, so transparent edges do not grow halos."""
    if not has_alpha(image):
        return image.filter(_SHARPEN)
    sharp = image.convert("RGB").filter(_SHARPEN)
    sharp.putalpha(image.getchannel("A"))
    return sharp


def nearest_ratio(width: int, height: int, ratios: Sequence[str]) -> str:
    """The "W:H" string in ratios closest to width/height, compared in log space."""
    if width <= 0 or height <= 0 or not ratios:
        raise ValueError("nearest_ratio needs a positive size and at least one ratio")
    target = math.log(width / height)
    return min(ratios, key=lambda ratio: abs(_log_ratio(ratio) - target))


def _log_ratio(ratio: str) -> float:
    """log(W/H) of a "W:H" string."""
    w, _, h = ratio.partition(":")
    return math.log(float(w) / float(h))


async def prepare_input_async(
    data: bytes,
    *,
    name: Words = IMAGE,
    max_bytes: int = 25 * 1024 * 1024,
    max_pixels: int = 64_000_000,
    max_side: int = 4096,
    max_out_bytes: int = 7 * 1024 * 1024,
    accept: frozenset[str] = DEFAULT_ACCEPT,
) -> PreparedImage:
    """prepare_input in the image pool."""
    return await run_image(
        prepare_input,
        data,
        name=name,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        max_side=max_side,
        max_out_bytes=max_out_bytes,
        accept=accept,
    )


async def fit_for_upload_async(
    images: Sequence[tuple[bytes, str]],
    *,
    per_file_limit: int = 10 * 1024 * 1024,
    total_limit: int = 25 * 1024 * 1024,
    margin: int = UPLOAD_MARGIN,
    decoded: Sequence[Decoded | None] = (),
) -> list[FittedImage]:
    """fit_for_upload off the loop: in the image pool when a file must be re-encoded.

    A pass-through only reads headers, so it need not queue behind other jobs' re-encodes.
    """
    sizes = [len(data) for data, _ in images]
    must_shrink = fair_share(sizes, total_limit - margin, per_file_limit - margin) is not None
    return await (run_image if must_shrink else asyncio.to_thread)(
        fit_for_upload,
        images,
        per_file_limit=per_file_limit,
        total_limit=total_limit,
        margin=margin,
        decoded=decoded,
    )


async def upscale_local_async(
    data: bytes, factor: int, *, max_side: int = 8192, name: Words = IMAGE
) -> tuple[bytes, str]:
    """upscale_local in the image pool."""
    return await run_image(upscale_local, data, factor, max_side=max_side, name=name)
