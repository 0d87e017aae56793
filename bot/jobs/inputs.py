"""A job's input images: downloaded once the job is admitted, then checked and shrunk for the model."""

from __future__ import annotations

import asyncio

from bot.config import Settings
from bot.imaging import prepare_input_async
from bot.jobs.spec import JobInput, PendingInput, RawInput
from bot.providers.base import InputImage, ModelSpec


async def load_inputs(inputs: list[JobInput]) -> list[RawInput]:
    """The inputs' bytes: pending ones downloaded now, side by side; when one fails, the others
    are stopped (a job with 14 references does not go on downloading for nothing)."""

    async def one(item: JobInput) -> RawInput:
        return await item.fetch() if isinstance(item, PendingInput) else item

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(item)) for item in inputs]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None  # the first failure, as the user should hear it
    return [task.result() for task in tasks]


async def prepare_inputs(settings: Settings, inputs: list[RawInput], spec: ModelSpec) -> list[InputImage]:
    """Sniff, guard, orient and shrink each input to what the model accepts (off the loop)."""
    prepared = []
    for raw in inputs:
        image = await prepare_input_async(
            raw.data,
            name=raw.name,
            max_bytes=settings.max_input_bytes,
            max_pixels=settings.max_input_pixels,
            max_side=spec.max_input_side,
            max_out_bytes=spec.max_input_bytes,
            accept=spec.input_mimes,
        )
        prepared.append(InputImage(image.data, image.mime, raw.url, raw.name))
    return prepared
