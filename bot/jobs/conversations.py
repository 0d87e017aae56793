"""Conversations from stored turns: the images of a turn, and the multi-turn history behind a reply."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.errors import InputError
from bot.i18n import Text
from bot.imaging import image_dims, sniff_mime
from bot.providers.base import ImageData, Turn
from bot.storage.blobs import BlobStore
from bot.storage.turns import TurnRecord, TurnStore

log = logging.getLogger(__name__)

#: Re-downloads output image `index` of a turn from its Discord message (fresh URL); None if gone.
Refetch = Callable[[TurnRecord, int], Awaitable[bytes | None]]
#: A fresh public URL of output image `index` of a turn (its Discord attachment); None if gone.
Locate = Callable[[TurnRecord, int], Awaitable[str | None]]
#: Turn kinds that take part in a model conversation (upscales are not conversational).
CONVERSATIONAL = frozenset({"imagine", "edit", "refine", "reroll", "vary"})


@dataclass(slots=True)
class History:
    """The replayable history of a conversation up to one turn."""

    turns: list[Turn]
    cut: bool


class Threads:
    """Reads conversations back: blobs first, Discord as the fallback for missing files."""

    def __init__(
        self,
        turns: TurnStore,
        blobs: BlobStore,
        *,
        depth: int,
        refetch: Refetch | None = None,
        locate: Locate | None = None,
    ):
        self.turns = turns
        self.blobs = blobs
        self.depth = depth
        self.refetch = refetch
        self.locate = locate

    async def output_image(self, turn: TurnRecord, index: int = 0) -> ImageData:
        """Output image `index` of a turn, re-fetched from Discord when its file is gone."""
        if index >= len(turn.output_images):
            raise InputError(Text("jobs.no_output"))
        ref = turn.output_images[index]
        data = await self.blobs.get(ref)
        if data is None:
            data = await self._refetch(turn, index)
        return ImageData(data, ref.mime if sniff_mime(data) == ref.mime else sniff_mime(data) or ref.mime)

    async def output_url(self, turn: TurnRecord, index: int = 0) -> str | None:
        """A public URL of output image `index` of a turn, for a provider that takes images only by URL
        (its Discord attachment, signed afresh); None when it cannot be found."""
        return await self.locate(turn, index) if self.locate is not None else None

    async def _refetch(self, turn: TurnRecord, index: int) -> bytes:
        """Download the image again from the turn's Discord message and keep it as a blob."""
        data = await self.refetch(turn, index) if self.refetch is not None else None
        if data is None:
            raise InputError(Text("jobs.refetch_gone"))
        mime = sniff_mime(data) or "image/png"
        width, height = image_dims(data)
        await self.blobs.put(data, mime, width, height)
        log.info("re-fetched output %d of turn %d from Discord", index, turn.id)
        return data

    async def input_images(self, turn: TurnRecord) -> tuple[ImageData, ...]:
        """The user's input images of a turn (those still stored)."""
        images = []
        for ref in turn.input_images:
            data = await self.blobs.get(ref)
            if data is not None:
                images.append(ImageData(data, ref.mime))
        return tuple(images)

    async def history(self, turn: TurnRecord) -> History:
        """User and model turns up to and including `turn`, oldest first, at most `depth` turns."""
        chain, cut = await self.turns.lineage(turn.id, self.depth)
        turns: list[Turn] = []
        for record in chain:
            if not replayable(record):
                continue
            turns.append(Turn("user", record.prompt or None, await self.input_images(record)))
            output = await self.output_image(record, 0)
            turns.append(Turn("model", record.model_text, (output,), _first_variant(record)))
        return History(turns, cut)

    async def latest_in_channel(self, channel_id: int) -> TurnRecord | None:
        """The newest turn with an image in this channel (the channel's current conversation)."""
        return await self.turns.latest_in_channel(channel_id)


def replayable(record: TurnRecord) -> bool:
    """Whether a turn is replayed as conversation history (finished, conversational, with an image)."""
    return record.status == "done" and record.kind in CONVERSATIONAL and bool(record.output_images)


def _first_variant(record: TurnRecord) -> dict[str, object]:
    """The provider state of the turn's first image (multi-image turns keep one per variant)."""
    state = dict(record.provider_state)
    state.pop("variants", None)
    return state
