"""Refusals decided before anything is reserved, downloaded or decoded: conversations that may not
be continued (deleted results, someone else's under CONTINUE_POLICY=starter), too many inputs for the
model, a resolution, ratio, thinking level or search it cannot take, and upscales whose result would be too
large."""

from __future__ import annotations

import math

from bot.errors import InputError, Refused
from bot.jobs.spec import AUTO, JobInput, JobSpec, PendingInput, RawInput
from bot.providers.base import ModelSpec
from bot.storage.turns import TurnRecord, TurnStore

GONE = "That image was deleted or is no longer available, so it cannot be used again."


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
        raise Refused(
            "🔒 Not your conversation", f"Only <@{starter}>, who started this conversation, can continue it."
        )


def check_input_count(spec: ModelSpec, count: int) -> None:
    """Refuse more input images than the model takes (before any is downloaded)."""
    if count > spec.max_input_images:
        limit = spec.max_input_images
        raise InputError(
            f"{spec.name} takes at most {limit} input image{'s' if limit != 1 else ''}; this job has {count}"
        )


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


def check_upscale_size(width: int, height: int, factor: int, max_pixels: int) -> None:
    """Refuse an upscale whose result would pass MAX_OUTPUT_PIXELS, naming the largest factor that fits."""
    pixels = width * height * factor * factor
    if pixels <= max_pixels:
        return
    fits = math.isqrt(max_pixels // max(1, width * height))
    offered = [f for f in (2, 4) if f <= fits]
    what = (
        f"the largest factor that fits is ×{offered[-1]}"
        if offered
        else "this image is too large to upscale at all"
    )
    raise InputError(
        f"×{factor} of this {width}×{height} image would make {pixels / 1e6:.1f} MP, over this bot's "
        f"{max_pixels / 1e6:.0f} MP limit; {what}. Nothing was charged."
    )


def check_shape(spec: ModelSpec, job: JobSpec) -> None:
    """A resolution or aspect ratio the decided model cannot make, refused before anything is
    reserved (the provider checks the whole request again before sending it)."""
    if job.resolution and job.resolution not in spec.resolutions:
        raise InputError(f"{spec.name} does not offer {job.resolution}; choose {', '.join(spec.resolutions)}")
    ratio = job.aspect_ratio
    if ratio and ratio != AUTO and ratio not in spec.aspect_ratios:
        ratios = ", ".join(spec.aspect_ratios)
        raise InputError(f"{spec.name} does not support aspect ratio {ratio}; choose one of {ratios}")
    check_thinking(spec, job.thinking)
    check_search(spec, job.search)


def check_search(spec: ModelSpec, search: bool | None) -> None:
    """A Google Search asked of a model without grounding, refused before anything is reserved (the
    server's default is no ask: it simply does not apply to such a model)."""
    if search and not spec.grounding:
        raise InputError(
            f"{spec.name} cannot ground its images in Google Search; turn the search option off, or "
            "choose a model that offers it (the search option lists on and off only for those)"
        )


def check_thinking(spec: ModelSpec, level: str | None) -> None:
    """A thinking level the model does not take, refused before anything is reserved."""
    if level is None or level in spec.thinking_levels:
        return
    if not spec.thinking_levels:
        raise InputError(f"{spec.name} takes no thinking level; leave the thinking option out")
    levels = ", ".join(spec.thinking_levels)
    raise InputError(f"{spec.name} does not take thinking level {level}; choose {levels}")
