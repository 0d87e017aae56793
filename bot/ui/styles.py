"""Saved styles on the Discord side: a job given a style (its words appended to the prompt, its images
added as references), and the images a style is saved from (a result's, or attachments)."""

from __future__ import annotations

import logging
from dataclasses import replace

import discord

from bot.errors import InputError
from bot.i18n import Text, t
from bot.imaging import prepare_input_async
from bot.jobs.ids import job_code, turn_id_of
from bot.jobs.spec import Delivery, JobInput, JobSpec, PendingInput, RawInput
from bot.storage.blobs import BlobStore
from bot.storage.styles import MAX_STYLE_IMAGES, Style
from bot.storage.turns import BlobRef, TurnRecord
from bot.ui.attachments import check_declared, is_image_attachment, read_attachment
from bot.ui.embeds import clip, inert
from bot.ui.types import Interaction
from bot.ui.visibility import visible_turn
from bot.wiring import Services, services_of

log = logging.getLogger(__name__)

#: How much of a style's words /style list shows.
WORDS_SHOWN = 80


def styled_prompt(prompt: str, words: str) -> str:
    """The job's prompt with the style's words after it ("<prompt>. Style: <words>")."""
    if not words:
        return prompt
    return f"{prompt.rstrip().rstrip('.')}. Style: {words}"


def style_inputs(blobs: BlobStore, style: Style) -> list[JobInput]:
    """The style's images as job inputs, read from the blob store only once the job is admitted (so
    they count toward the model's reference limit before anything is read)."""

    def pending(n: int, ref: BlobRef) -> PendingInput:
        name = Text("styles.input", name=style.name, n=n)

        async def fetch() -> RawInput:
            data = await blobs.get(ref)
            if data is None:
                raise InputError(Text("style.error.image_gone", name=style.name))
            return RawInput(data, name)

        return PendingInput(name=name, fetch=fetch, size=ref.size, width=ref.width, height=ref.height)

    return [pending(n, ref) for n, ref in enumerate(style.images, 1)]


def apply_style(job: JobSpec, style: Style, blobs: BlobStore) -> JobSpec:
    """The job with the style's words in its prompt and its images after the job's own inputs."""
    prompt = styled_prompt(job.prompt, style.prompt)
    return replace(job, prompt=prompt, inputs=[*job.inputs, *style_inputs(blobs, style)])


async def with_style(
    interaction: Interaction, job: JobSpec, name: str | None, delivery: Delivery
) -> JobSpec | None:
    """The job in the named style (unchanged without one); None when there is no such style, after
    telling the member (before anything is charged)."""
    if not name or not name.strip():
        return job
    services = services_of(interaction.client)
    style = await services.styles.find(interaction.user.id, interaction.guild_id, name)
    if style is None:
        shown = inert(clip(name.strip(), 40))
        await delivery.fail(InputError(Text("style.error.unknown", name=shown)))
        return None
    return apply_style(job, style, services.blobs)


async def result_for_style(services: Services, interaction: Interaction, code: str) -> TurnRecord:
    """The result a job id names, if the member may see it here (as /show decides)."""
    return await visible_turn(services, interaction, turn_id_of(code))


async def store_attachment(services: Services, attachment: discord.Attachment) -> BlobRef:
    """An attached image downloaded, checked and shrunk like a job's input, then kept as a blob."""
    settings = services.settings
    if not is_image_attachment(attachment):
        raise InputError(Text("style.error.not_image", file=attachment.filename))
    check_declared(attachment, settings.max_input_bytes)
    raw = await read_attachment(attachment, settings.max_input_bytes)
    image = await prepare_input_async(
        raw.data,
        name=attachment.filename,
        max_bytes=settings.max_input_bytes,
        max_pixels=settings.max_input_pixels,
    )
    return await services.blobs.put(image.data, image.mime, image.width, image.height)


async def style_images(
    services: Services, turn: TurnRecord | None, attachments: list[discord.Attachment]
) -> list[BlobRef]:
    """A new style's images: the result's (its stored files, not copied), then the attachments."""
    from_result = list(turn.output_images) if turn is not None else []
    if len(from_result) + len(attachments) > MAX_STYLE_IMAGES:
        count = len(from_result) + len(attachments)
        raise InputError(Text("style.error.too_many", limit=MAX_STYLE_IMAGES, given=count))
    for attachment in attachments:  # refused by declared size before any is downloaded
        check_declared(attachment, services.settings.max_input_bytes)
    return from_result + [await store_attachment(services, a) for a in attachments]


def style_line(style: Style, locale: str | None) -> str:
    """One style as /style list shows it: name, code, image count and the start of its words."""
    images = t(locale, "style.images", count=len(style.images))
    words = f": {inert(clip(style.prompt, WORDS_SHOWN))}" if style.prompt else ""
    return f"**{inert(style.name)}** · `{style.share_code}` · {images}{words}"


def styles_embed(styles: list[Style], locale: str | None) -> discord.Embed:
    """The member's own styles and this server's, with their share codes."""
    embed = discord.Embed(title=t(locale, "style.list.title"), colour=discord.Colour.blurple())
    own = [style_line(s, locale) for s in styles if not s.is_server]
    server = [style_line(s, locale) for s in styles if s.is_server]
    listed = "\n".join(own) or t(locale, "style.list.none")
    embed.add_field(name=t(locale, "style.list.own"), value=clip(listed, 1024), inline=False)
    if server:
        embed.add_field(
            name=t(locale, "style.list.server"), value=clip("\n".join(server), 1024), inline=False
        )
    embed.set_footer(text=t(locale, "style.list.footer"))
    return embed


def saved_embed(style: Style, turn: TurnRecord | None, locale: str | None) -> discord.Embed:
    """What /style save and /style import answer: the style, where it is kept, its share code."""
    embed = discord.Embed(
        title=t(locale, "style.saved.title", name=clip(style.name, 200)),
        description=t(locale, "style.saved.server" if style.is_server else "style.saved.own"),
        colour=discord.Colour.green(),
    )
    if turn is not None:
        embed.add_field(
            name=t(locale, "style.field.from_result"),
            value=t(locale, "style.field.from_result_value", code=job_code(turn.id)),
        )
    words = inert(clip(style.prompt, 1000)) or t(locale, "style.field.none")
    embed.add_field(name=t(locale, "style.field.words"), value=words)
    embed.add_field(name=t(locale, "style.field.images"), value=str(len(style.images)))
    embed.add_field(name=t(locale, "style.field.code"), value=f"`{style.share_code}`")
    return embed
