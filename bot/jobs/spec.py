"""What a job is: its spec in, its result out (plain data, shared by the service and the cogs)."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from bot.billing.admission import Charge
from bot.i18n import Text, Words
from bot.imaging import FittedImage
from bot.imaging.codec import IMAGE
from bot.jobs.supervisor import ProgressHook
from bot.providers.base import (
    MAX_SEED,
    GenerateResult,
    ImageData,
    InputImage,
    ModelSpec,
    SafetyLevel,
    Sources,
)
from bot.storage.guilds import GuildConfig
from bot.storage.turns import TurnRecord

JobKind = Literal["imagine", "edit", "upscale", "refine", "reroll", "vary"]
AUTO = "auto"
DISCORD_FILE_LIMIT = 10 * 1024 * 1024
DISCORD_MESSAGE_LIMIT = 25 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RawInput:
    """An input image as received: bytes, a name to show, and a public URL when there is one."""

    data: bytes
    name: Words = IMAGE
    url: str | None = None


@dataclass(frozen=True, slots=True)
class PendingInput:
    """An input not fetched yet (an attachment, an image in the channel): what is known about it
    before a byte is downloaded, and how to download it once the job has been admitted."""

    name: Words
    fetch: Callable[[], Awaitable[RawInput]]
    size: int = 0
    width: int | None = None
    height: int | None = None
    url: str | None = None


JobInput = RawInput | PendingInput


@dataclass(frozen=True, slots=True)
class JobSpec:
    """Everything a job needs, independent of where it came from."""

    kind: JobKind
    prompt: str = ""
    #: Inputs as given; pending ones are downloaded only after every check has passed.
    inputs: list[JobInput] = field(default_factory=list)
    provider: str | None = None
    model: str | None = None
    aspect_ratio: str | None = None
    resolution: str | None = None
    count: int = 1
    factor: int = 2
    upload_limit: int = DISCORD_FILE_LIMIT
    guild_id: int | None = None
    channel_id: int = 0
    user_id: int = 0
    #: The turn this job continues (its conversation gets the new turn as a child).
    parent: TurnRecord | None = None
    #: Replay the parent's conversation to multi-turn providers (a reply); else edit its image.
    use_history: bool = False
    #: Whether the parent's image is an input (False: the parent is only the conversation link).
    parent_image: bool = True
    role_ids: tuple[int, ...] = ()
    channel_nsfw: bool = False
    #: The Discord id (a snowflake: it grows with time) of the interaction or message that asked for
    #: the job; a member's jobs start in this order. 0: when the service first sees it.
    sent_at: int = 0
    #: Told where the job stands while it waits and runs (edits the "thinking…" message).
    progress: ProgressHook | None = None
    #: With no input and no parent: use the channel's latest result, else this finds an image of ours
    #: in the channel (without downloading it). Resolved only after the rules have passed.
    find_latest: Callable[[], Awaitable[PendingInput]] | None = None
    #: Looks up more references (message links, image URLs) without downloading them; run only
    #: once the server's rules have let the job through, and added after `inputs`.
    find_references: Callable[[], Awaitable[list[JobInput]]] | None = None
    #: The seed asked for (/imagine and /edit pick one when none is given; 🔁 Reroll a new one).
    seed: int | None = None
    #: A thinking level of the model's (`ModelSpec.thinking_levels`); None: the model's default.
    thinking: str | None = None
    #: The server's safety level (/settings set safety), filled in from its settings.
    safety: SafetyLevel = "default"
    #: Ground the images in Google Search: asked for (refused on a model without grounding), asked
    #: not to, or None for the server's default.
    search: bool | None = None
    #: The server's default for `search` (/settings set search), filled in from its settings.
    search_default: bool = False
    #: Whether the server shows thinking models' interim images (/settings set previews).
    previews: bool = True
    #: Delivered privately (the member's /prefs): only the requester may /show it or see it in /history.
    private: bool = False

    async def with_references(self) -> JobSpec:
        """The job with its looked-up references added to its inputs (nothing is downloaded)."""
        if self.find_references is None:
            return self
        return replace(self, inputs=[*self.inputs, *await self.find_references()], find_references=None)

    @property
    def safety_applied(self) -> SafetyLevel:
        """The safety level sent: "relaxed" only in an age-restricted channel, else the default."""
        if self.safety == "relaxed" and not self.channel_nsfw:
            return "default"
        return self.safety

    def with_server(self, config: GuildConfig) -> JobSpec:
        """The job with its server's settings filled in (safety level, search default, previews)."""
        return replace(
            self, safety=config.safety, search_default=config.search_default, previews=config.previews
        )

    def searches(self, spec: ModelSpec) -> bool:
        """Whether the request grounds in Google Search: as asked, else the server's default where the
        model can (a server default never refuses a job; an explicit ask was checked before admission)."""
        wanted = self.search_default if self.search is None else self.search
        return wanted and spec.grounding


@dataclass(frozen=True, slots=True)
class JobResult:
    """What the user receives: upload-ready files and what to say about them."""

    files: list[FittedImage]
    provider: str
    model: str
    prompt: str
    resolution: str | None
    aspect_ratio: str | None
    elapsed: float
    text: str | None = None
    turn_id: int | None = None
    history_cut: bool = False
    charge: Charge = field(default_factory=lambda: Charge(None, 0))
    #: The seed of the first image (the n-th used seed + n), to make it again.
    seed: int | None = None
    #: What Google Search grounding drew on (empty when the job did not search).
    sources: Sources = field(default_factory=Sources)
    #: How many images the request carried besides the conversation (references, the edited image).
    references: int = 0
    #: The token counts the provider reported (Gemini's usageMetadata, summed over the job's calls).
    usage: dict[str, Any] = field(default_factory=dict)
    #: What that usage costs by the token prices, before the server's multiplier (None: the job is
    #: not priced by tokens, or nothing was reported: the reservation is charged).
    reported_cents: int | None = None

    @property
    def cost_cents(self) -> int:
        """What the job costs (charged once it is delivered): the reported cost when known."""
        return self.charge.spent_cents

    @property
    def reencoded(self) -> bool:
        """Whether any image had to be re-encoded to fit the upload limit."""
        return any(f.reencoded for f in self.files)


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a result was posted: its channel and message(s)."""

    channel_id: int
    message_ids: tuple[int, ...]


class Delivery(Protocol):
    """Where a job's result and failures go; the Discord side implements it (bot/ui/delivery.py) for
    interactions (slash commands, menus, buttons, modals) and for replies."""

    async def deliver(self, result: JobResult) -> Posted | None:
        """Post the result (None: there was nowhere to post it); raise DeliveryFailed if refused."""
        ...

    async def fail(self, error: BaseException) -> None:
        """Tell the user why the job failed or was refused (never raises)."""
        ...


@dataclass(slots=True)
class Outcome:
    """A provider result with what the turn must record about its inputs."""

    result: GenerateResult
    inputs: list[InputImage]
    ratio: str | None = None
    history_cut: bool = False
    #: The model asked for (a provider may report another name for it).
    requested_model: str | None = None


def new_seed() -> int:
    """A random seed, so a result made without one can still be made again."""
    return random.randint(0, MAX_SEED)


def raw_image(image: ImageData, url: str | None = None) -> RawInput:
    """An image we already hold (a result), as a job input; with its public URL when a provider
    takes images only by URL."""
    return RawInput(image.data, Text("jobs.input.previous"), url)
