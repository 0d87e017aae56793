"""Members' preferences on /imagine and /edit: the private "thinking…" they may ask for, the defaults
they fill in, and how /prefs shows them and checks them against the models."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import discord

from bot.errors import InputError, NanoBotError
from bot.i18n import Text, Words, render, t
from bot.jobs.spec import JobSpec
from bot.providers.base import ModelSpec
from bot.storage.prefs import MemberPrefs
from bot.ui.delivery import acknowledge
from bot.ui.types import Interaction
from bot.wiring import Services, services_of

log = logging.getLogger(__name__)

#: Seconds a command waits for a member's preferences (not cached) before it answers Discord.
PRIVATE_LOOKUP = 0.5
#: /imagine's count when the command did not give one (JobSpec.count is an int).
COUNT_NOT_GIVEN = 0
#: /imagine's aspect ratio when neither the command nor the preferences give one the model makes.
DEFAULT_RATIO = "1:1"
#: The title of /prefs show.
YOURS = Text("prefs.title.yours")


async def acknowledge_with_prefs(interaction: Interaction, job: JobSpec) -> tuple[JobSpec, int | None]:
    """Answer Discord (privately when the member asked for private results), then return the job with
    the member's preferences filling in what the command did not give, and the "thinking…" id.

    The preferences are read once: from the cache, else from the database for at most
    PRIVATE_LOOKUP seconds before the deferral (Discord's 3 s for the first answer come first). A
    slower or failed read defers privately: a member who asked for private results never gets a
    public one; the other preferences still apply once the read is done.
    """
    services = services_of(interaction.client)
    prefs = services.prefs.cached(interaction.user.id)
    reading: asyncio.Future[MemberPrefs] | None = None
    if prefs is None:
        reading = asyncio.ensure_future(services.prefs.get(interaction.user.id))
        done, _ = await asyncio.wait({reading}, timeout=PRIVATE_LOOKUP)
        prefs = _read(reading) if done else None
    loading = await acknowledge(interaction, private=prefs is None or prefs.private)  # unknown: private
    if prefs is None and reading is not None:
        await asyncio.wait({reading})
        prefs = _read(reading)
    return await apply_prefs(services, interaction.guild_id, job, prefs or MemberPrefs()), loading


def _read(reading: asyncio.Future[MemberPrefs]) -> MemberPrefs | None:
    """A finished read's preferences; None when it failed (the job is then answered privately, runs
    with the defaults, and meets the same database, which says so)."""
    try:
        return reading.result()
    except Exception as e:
        log.warning("could not read a member's preferences (%s); using the defaults", type(e).__name__)
        return None


async def apply_prefs(services: Services, guild_id: int | None, job: JobSpec, prefs: MemberPrefs) -> JobSpec:
    """The job with the preferences the command did not override and its model can take (a
    preference it cannot take is left out, never refused); /edit keeps its input's shape unless told.
    """
    model = job.model
    if model is None and job.provider is None and prefs.model and offered(services, prefs.model):
        model = prefs.model
    job = replace(job, model=model)
    wanted = (prefs.aspect_ratio, prefs.resolution, prefs.count, prefs.prompt_suffix)
    spec = await likely_spec(services, guild_id, job) if any(wanted) else None
    count = job.count
    if count == COUNT_NOT_GIVEN:
        count = prefs.count if spec and prefs.count and prefs.count <= spec.max_count else 1
    ratio = job.aspect_ratio
    if ratio is None and job.kind == "imagine":
        ratio = prefs.aspect_ratio if spec and prefs.aspect_ratio in spec.aspect_ratios else DEFAULT_RATIO
    resolution = job.resolution
    if resolution is None and spec and prefs.resolution in spec.resolutions:
        resolution = prefs.resolution
    prompt = job.prompt
    if (
        (suffix := prefs.prompt_suffix.strip())
        and spec
        and len(prompt) + len(suffix) + 2 <= spec.max_prompt_chars
    ):
        prompt = f"{prompt}, {suffix}"
    return replace(job, count=count, aspect_ratio=ratio, resolution=resolution, prompt=prompt)


async def likely_spec(services: Services, guild_id: int | None, job: JobSpec) -> ModelSpec | None:
    """The limits of the model the job will run on: its own, else the server's default, else the
    bot's (None when no provider serves it: the job is then refused for that, not for a preference)."""
    probe = job
    if job.model is None and job.provider is None and guild_id:
        try:
            config = await services.guild_settings.get(guild_id)
        except Exception as e:  # the job meets the same database and says so
            log.warning("could not read the server's default model (%s)", type(e).__name__)
        else:
            probe = services.jobs.routing.with_guild_defaults(job, config)
    try:
        return services.jobs.spec_for(probe.provider, probe.model)
    except NanoBotError:
        return None


def offered(services: Services, model: str) -> bool:
    """Whether a configured provider serves the model."""
    return any(m == model for _, m in services.router.models())


def check_prefs(services: Services, prefs: MemberPrefs) -> None:
    """Refuse preferences their model (the bot's default when none is chosen) cannot take."""
    if prefs.model and not offered(services, prefs.model):
        offers = ", ".join(dict.fromkeys(m for _, m in services.router.models()))
        models: Words = offers or Text("prefs.value.none")
        raise InputError(Text("prefs.error.unknown_model", model=prefs.model, models=models))
    try:
        spec = services.jobs.spec_for(None, prefs.model)
    except NanoBotError as e:
        raise InputError(Text("prefs.error.no_model", detail=e.words)) from e
    if prefs.aspect_ratio and prefs.aspect_ratio not in spec.aspect_ratios:
        ratios = ", ".join(spec.aspect_ratios)
        raise InputError(Text("prefs.error.ratio", model=spec.name, ratio=prefs.aspect_ratio, ratios=ratios))
    if prefs.resolution and prefs.resolution not in spec.resolutions:
        sizes = ", ".join(spec.resolutions)
        raise InputError(
            Text("prefs.error.resolution", model=spec.name, resolution=prefs.resolution, sizes=sizes)
        )
    if prefs.count and prefs.count > spec.max_count:
        raise InputError(Text("prefs.error.count", model=spec.name, count=spec.max_count))


def prefs_embed(prefs: MemberPrefs, locale: str | None, title: Words = YOURS) -> discord.Embed:
    """What the member has set, and what applies where they set nothing, in the locale's language."""
    embed = discord.Embed(title=render(title, locale), colour=discord.Colour.blurple())

    def field(key: str, value: str, *, inline: bool = True) -> None:
        embed.add_field(name=t(locale, key), value=value, inline=inline)

    field("prefs.field.model", prefs.model or t(locale, "prefs.value.server_default"))
    field(
        "prefs.field.aspect_ratio",
        prefs.aspect_ratio or t(locale, "prefs.value.ratio_default", ratio=DEFAULT_RATIO),
    )
    field("prefs.field.resolution", prefs.resolution or t(locale, "prefs.value.model_default"))
    field("prefs.field.count", str(prefs.count or 1))
    suffix = discord.utils.escape_mentions(discord.utils.escape_markdown(prefs.prompt_suffix))
    field(
        "prefs.field.suffix", f", {suffix}"[:1024] if suffix else t(locale, "prefs.value.none"), inline=False
    )
    private = "prefs.value.private_on" if prefs.private else "prefs.value.private_off"
    field("prefs.field.private", t(locale, private), inline=False)
    embed.set_footer(text=t(locale, "prefs.footer"))
    return embed
