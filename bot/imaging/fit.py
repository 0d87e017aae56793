"""Fit result images under Discord's upload limits, re-encoding only the ones that must shrink."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.errors import ImageTooLarge
from bot.i18n import Text
from bot.imaging.codec import Decoded, check_supported, decode, encode_within, has_alpha, open_image

# Opaque images go to JPEG, transparent ones to WebP; quality steps before any downscaling.
FIT_QUALITIES = (90, 85, 80, 75)
# Largest image we agree to decode here: an 8192² upscale result.
FIT_MAX_PIXELS = 8192 * 8192
#: Room kept under Discord's limits for the rest of the message (embeds, multipart framing).
UPLOAD_MARGIN = 64 * 1024
_EXTS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
}


@dataclass(frozen=True)
class FittedImage:
    """An image ready to attach to a Discord message."""

    data: bytes
    mime: str
    width: int
    height: int
    reencoded: bool

    @property
    def ext(self) -> str:
        """File extension for the attachment name, without the dot."""
        return _EXTS.get(self.mime, "bin")


def fit_for_upload(
    images: Sequence[tuple[bytes, str]],
    *,
    per_file_limit: int = 10 * 1024 * 1024,
    total_limit: int = 25 * 1024 * 1024,
    margin: int = UPLOAD_MARGIN,
    decoded: Sequence[Decoded | None] = (),
) -> list[FittedImage]:
    """Make every file ≤ per_file_limit - margin and all together ≤ total_limit - margin.

    decoded may hold, by index, images already decoded from those bytes (while they arrived).
    """
    per_file, remaining = per_file_limit - margin, total_limit - margin
    if per_file <= 0 or remaining <= 0:
        raise ValueError("the limits must be larger than the margin")
    sizes = [len(data) for data, _ in images]
    pending = sorted(range(len(images)), key=lambda i: sizes[i], reverse=True)
    fitted: dict[int, FittedImage] = {}
    while pending:
        budget = fair_share([sizes[i] for i in pending], remaining, per_file)
        if budget is None:
            break
        index = pending.pop(0)  # the largest file is always one that does not fit its share
        ready = decoded[index] if index < len(decoded) else None
        fitted[index] = _shrink(images[index][0], budget, f"image {index + 1}", ready)
        remaining -= len(fitted[index].data)
    for index in pending:
        fitted[index] = _passthrough(images[index][0], f"image {index + 1}")
    return [fitted[i] for i in range(len(images))]


def fair_share(sizes: Sequence[int], budget: int, per_file: int) -> int | None:
    """None if all files fit as they are, else the budget for the largest (water-filling)."""
    ascending = sorted(sizes)
    for count, size in enumerate(ascending):
        share = min(budget // (len(ascending) - count), per_file)
        if size > share:
            return max(share, 0)
        budget -= size
    return None


def _passthrough(data: bytes, name: str) -> FittedImage:
    """The caller's bytes object, untouched; only the header is read (mime by magic bytes)."""
    mime = check_supported(data, name)
    image = open_image(data, name, mime)
    return FittedImage(data, mime, image.width, image.height, reencoded=False)


def must_shrink_over(per_file_limit: int, total_limit: int, margin: int = UPLOAD_MARGIN) -> int:
    """The size over which a result is sure to be re-encoded, whatever else the message holds."""
    return min(per_file_limit, total_limit) - margin


def _shrink(data: bytes, budget: int, name: str, decoded: Decoded | None = None) -> FittedImage:
    """Decode once (unless done already), then re-encode (JPEG, or WebP for real alpha) within budget."""
    if budget <= 0:
        raise ImageTooLarge(Text("imaging.message_full", name=name))
    if decoded is None:
        decoded = decode(data, name, FIT_MAX_PIXELS)
    fmt = "WEBP" if has_alpha(decoded.image) else "JPEG"
    out = encode_within(decoded.image, fmt, budget, FIT_QUALITIES, decoded.icc)
    return FittedImage(out.data, out.mime, out.width, out.height, reencoded=True)
