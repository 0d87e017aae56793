"""Turns as the service writes them: a finished turn with its images, or one complete failed turn."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bot.errors import NanoBotError
from bot.imaging import image_dims
from bot.jobs.spec import JobSpec, Outcome
from bot.providers.base import ImageData
from bot.storage.blobs import BlobStore
from bot.storage.turns import BlobRef, NewTurn, TurnStore

log = logging.getLogger(__name__)


class TurnRecorder:
    """Stores a job's images in the blob store and its turn in the database."""

    def __init__(self, turns: TurnStore, blobs: BlobStore) -> None:
        self.turns = turns
        self.blobs = blobs

    async def _put(self, image: ImageData) -> BlobRef:
        """Keep an image in the blob store."""
        width, height = image_dims(image.data)
        return await self.blobs.put(image.data, image.mime, width, height)

    async def done(self, job: JobSpec, outcome: Outcome) -> int:
        """Store the images (side by side) and write the finished turn; its id."""
        result = outcome.result
        inputs = [img for i in outcome.inputs if (img := i.as_image()) is not None]
        refs = await asyncio.gather(*(self._put(image) for image in (*inputs, *result.images)))
        options = {**options_of(job), **({"aspect_ratio": outcome.ratio} if outcome.ratio else {})}
        if outcome.requested_model:
            options["requested_model"] = outcome.requested_model
        if result.sources:  # what Google Search grounding drew on, so a re-post can show it again
            options["sources"] = result.sources.as_json()
        if result.usage:  # the provider's token counts (what the job really cost it)
            options["usage"] = dict(result.usage)
        turn = await self.turns.create(
            new_turn(
                job,
                "done",
                provider=result.provider,
                model=result.model,
                options=options,
                input_images=tuple(refs[: len(inputs)]),
                output_images=tuple(refs[len(inputs) :]),
                model_text=result.text,
                provider_state=dict(result.state),
            )
        )
        return turn.id

    async def failed(self, job: JobSpec, error: str) -> None:
        """A failed job leaves one complete failed turn (never a half-written one); never raises."""
        try:
            await self.turns.create(new_turn(job, "failed", error=error[:2000]))
        except Exception:
            log.exception("could not record a failed %s turn", job.kind)

    async def mark_failed(self, turn_id: int | None, error: str) -> None:
        """Turn a recorded turn into a failed one (best effort: the job's own error matters more)."""
        if turn_id is None:
            return
        try:
            await self.turns.mark_failed(turn_id, error[:2000])
        except Exception as e:
            log.warning("could not mark turn %s failed (%s)", turn_id, type(e).__name__)


def new_turn(job: JobSpec, status: str, **fields: Any) -> NewTurn:
    """A turn row for this job; `fields` override the defaults taken from the job."""
    defaults: dict[str, Any] = {
        "guild_id": job.guild_id,
        "channel_id": job.channel_id,
        "user_id": job.user_id,
        "parent_id": job.parent.id if job.parent else None,
        "kind": job.kind,
        "status": status,
        "prompt": job.prompt,
        "provider": job.provider,
        "model": job.model,
        "options": options_of(job),
    }
    return NewTurn(**{**defaults, **fields})


def failure_text(error: BaseException) -> str:
    """What a failed turn records about its error (never a traceback)."""
    if isinstance(error, NanoBotError):
        return f"{type(error).__name__}: {error.message}"
    return "internal error"


def options_of(job: JobSpec) -> dict[str, object]:
    """The job's options as stored with its turn."""
    options: dict[str, object] = {
        "aspect_ratio": job.aspect_ratio,
        "resolution": job.resolution,
        "count": job.count,
        "inputs": [str(raw.name) for raw in job.inputs],
        "seed": job.seed,  # so the result can be made again
        "thinking": job.thinking,
        "search": job.search,  # None: the server's default applied
    }
    if job.kind == "upscale":
        options["factor"] = job.factor
    if job.private:
        options["private"] = True  # /show and /history keep it to its requester
    if job.channel_nsfw:
        options["age_restricted"] = True  # re-posted or re-used only in an age-restricted channel
    return {k: v for k, v in options.items() if v is not None}
