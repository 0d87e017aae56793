"""Refusals decided before anything is reserved, downloaded or decoded: conversations that may not
be continued (deleted results, someone else's under CONTINUE_POLICY=starter), too many inputs for the
model, a resolution, ratio, thinking level or search it cannot take, and upscales whose result would be too
large."""

from __future__ import annotations

import math

from bot.errors import InputError, Refused
from bot.i18n import Text
from bot.jobs.spec import AUTO, JobInput, JobSpec, PendingInput, RawInput
from bot.providers.base import ModelSpec
from bot.storage.turns import TurnRecord, TurnStore

#: The refusal of a conversation whose image was deleted.
GONE = Text("jobs.gone")
#: An upscale with no image to enlarge.
NO_IMAGE = Text("jobs.upscale.no_image")


async def live_parent(turns: TurnStore, parent: TurnRecord) -> TurnRecord:
    """The parent turn as stored now; InputError when it was deleted or never finished."""
    fresh = await turns.get(parent.id)
    if fresh is None or fresh.status != "done" or not fresh.output_images:
        raise InputError(GONE)
    return fresh


async def check_continue(turns: TurnStore, policy: str, parent: TurnRecord, user_id: int) -> None:
    """Under the `starter` policy only whoever started a conversation may continue it, by any means."""
    if policy != "starter":
        return
    root = parent if parent.root_id in (None, parent.id) else await turns.get(parent.root_id or parent.id)
    starter = (root or parent).user_id
    if user_id != starter:
        raise Refused(Text("jobs.conversation.title"), Text("jobs.conversation.body", starter=starter))


def check_input_count(spec: ModelSpec, count: int) -> None:
    """Refuse more input images than the model takes (before any is downloaded)."""
    if count > spec.max_input_images:
        limit = spec.max_input_images
        raise InputError(Text("jobs.inputs.too_many", model=spec.name, count=limit, have=count))


def declared_dims(job: JobSpec) -> tuple[int, int] | None:
    """The size of the image an upscale will enlarge, when known before downloading it."""
    first: JobInput | None = job.inputs[0] if job.inputs else None
    if isinstance(first, PendingInput):
        return (first.width, first.height) if first.width and first.height else None
    if isinstance(first, RawInput):
        return None  # bytes in hand: measured from their header once loaded
    if job.parent is not None and job.parent.output_images:
        ref = job.parent.output_images[0]
        return ref.width, ref.height
    return None


def check_upscale_job(job: JobSpec, max_pixels: int) -> None:
    """Refuse an upscale with no image, or whose declared image would enlarge past max_pixels."""
    if not job.inputs and job.parent is None:
        raise InputError(NO_IMAGE)
    if (dims := declared_dims(job)) is not None:
        check_upscale_size(*dims, job.factor, max_pixels)


def check_upscale_size(width: int, height: int, factor: int, max_pixels: int) -> None:
    """Refuse an upscale whose result would pass MAX_OUTPUT_PIXELS, naming the largest factor that fits."""
    pixels = width * height * factor * factor
    if pixels <= max_pixels:
        return
    fits = math.isqrt(max_pixels // max(1, width * height))
    offered = [f for f in (2, 4) if f <= fits]
    advice = Text("jobs.upscale.fits", factor=offered[-1]) if offered else Text("jobs.upscale.none")
    megapixels, limit = round(pixels / 1e6, 1), round(max_pixels / 1e6)
    size = {"factor": factor, "width": width, "height": height, "megapixels": megapixels, "limit": limit}
    raise InputError(Text("jobs.upscale.too_large", advice=advice, **size))


def check_shape(spec: ModelSpec, job: JobSpec) -> None:
    """A resolution or aspect ratio the decided model cannot make, refused before anything is
    reserved (the provider checks the whole request again before sending it)."""
    if job.resolution and job.resolution not in spec.resolutions:
        choices = ", ".join(spec.resolutions)
        raise InputError(Text("jobs.resolution", model=spec.name, resolution=job.resolution, choices=choices))
    ratio = job.aspect_ratio
    if ratio and ratio != AUTO and ratio not in spec.aspect_ratios:
        ratios = ", ".join(spec.aspect_ratios)
        raise InputError(Text("jobs.ratio", model=spec.name, ratio=ratio, choices=ratios))
    check_thinking(spec, job.thinking)
    check_search(spec, job.search)


def check_search(spec: ModelSpec, search: bool | None) -> None:
    """A Google Search asked of a model without grounding, refused before anything is reserved (the
    server's default is no ask: it simply does not apply to such a model)."""
    if search and not spec.grounding:
        raise InputError(Text("jobs.search", model=spec.name))


def check_thinking(spec: ModelSpec, level: str | None) -> None:
    """A thinking level the model does not take, refused before anything is reserved."""
    if level is None or level in spec.thinking_levels:
        return
    if not spec.thinking_levels:
        raise InputError(Text("jobs.thinking.none", model=spec.name))
    levels = ", ".join(spec.thinking_levels)
    raise InputError(Text("jobs.thinking.level", model=spec.name, level=level, choices=levels))
