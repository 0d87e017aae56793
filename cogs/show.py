"""/show: post a stored result again (images, embed, working buttons); /history: a member's results
as contact-sheet pages, with a menu to post one and buttons to page."""

from __future__ import annotations

import io
import logging
import math

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.errors import InputError, NanoBotError, Refused
from bot.i18n import Text, t
from bot.imaging.fit import FittedImage
from bot.imaging.fonts import font_face
from bot.imaging.pool import run_image
from bot.imaging.prepare import fit_for_upload_async
from bot.imaging.sheet import PER_PAGE, SheetCell, draw_sheet, make_thumbnail
from bot.jobs.ids import job_code, turn_id_of
from bot.jobs.spec import DISCORD_MESSAGE_LIMIT
from bot.storage.gallery import ResultEntry, count_results, recent_results
from bot.storage.turns import TurnRecord
from bot.ui.buttons import result_view
from bot.ui.delivery import acknowledge, send_error
from bot.ui.embeds import clip
from bot.ui.gallery import (
    PageButton,
    PickSelect,
    gallery_text,
    gallery_view,
    prompt_line,
    result_file_name,
    shown_embed,
)
from bot.ui.locale import user_locale
from bot.ui.types import Client, Interaction
from bot.ui.visibility import visible_turn
from bot.wiring import services_of

log = logging.getLogger(__name__)

#: Results autocomplete looks through for what the member typed (the newest first).
SUGGEST_FROM = 200
MAX_CHOICES = 25


def gone() -> Refused:
    """A result whose image files and Discord message are both gone."""
    return Refused(Text("show.gone.title"), Text("show.gone.body"))


def choice_name(entry: ResultEntry, locale: str | None) -> str:
    """An autocomplete line: the job id and the prompt's start ("3F9K · a lighthouse at dusk…")."""
    return clip(f"{job_code(entry.turn_id)} · {prompt_line(entry.prompt, locale)}", 100)


class Show(commands.Cog):
    """The /show and /history commands and the gallery's components."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    async def cog_load(self) -> None:
        """Gallery pages from any earlier run keep working."""
        self.bot.add_dynamic_items(PageButton, PickSelect)

    async def cog_unload(self) -> None:
        """Stop dispatching gallery clicks here."""
        self.bot.remove_dynamic_items(PageButton, PickSelect)

    @property
    def lifetime(self) -> float:
        """How long interaction tokens are treated as valid."""
        return self.services.settings.interaction_token_lifetime

    @app_commands.command(
        name=locale_str("show"), description=locale_str("Post one of your results again, by its job id")
    )
    @app_commands.rename(job="id")
    # Discord shows this option as "id": its description's key follows that name, not the parameter's.
    @app_commands.describe(
        job=locale_str("The job id shown on the result, e.g. 3F9K", key="command.show.option.id.description")
    )
    async def show(self, interaction: Interaction, job: app_commands.Range[str, 1, 20]) -> None:
        """Post the result here as this command's answer."""
        await self.repost(interaction, turn_id_of(job))

    @show.autocomplete("job")
    async def job_choices(self, interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
        """The member's newest results matching what they typed (a job id's start or prompt words)."""
        entries = await recent_results(self.services.db, interaction.user.id, limit=SUGGEST_FROM)
        needle = current.strip().lstrip("#").lower()
        found = [
            e
            for e in entries
            if not needle or job_code(e.turn_id).lower().startswith(needle) or needle in e.prompt.lower()
        ]
        locale = user_locale(interaction)
        return [
            app_commands.Choice(name=choice_name(e, locale), value=job_code(e.turn_id))
            for e in found[:MAX_CHOICES]
        ]

    async def repost(self, interaction: Interaction, turn_id: int | None) -> None:
        """Answer publicly, check the result may be shown here, post it with its buttons and link
        the new message to the result (so replies to it continue it too)."""
        await acknowledge(interaction, private=False)  # shown to the channel, even from a private page
        try:
            turn = await self.visible_turn(interaction, turn_id)
            images = await self.images_of(interaction, turn)
            files = [
                discord.File(io.BytesIO(f.data), filename=result_file_name(turn.id, n, f))
                for n, f in enumerate(images, 1)
            ]
            embed = shown_embed(turn, images, user_locale(interaction))
            message = await interaction.edit_original_response(
                content=None,
                embed=embed,
                attachments=files,
                view=result_view(turn.id, user_locale(interaction)),
            )
            await self.services.turns.attach_messages(turn.id, message.channel.id, [message.id])
        except Exception as error:
            if not isinstance(error, NanoBotError):
                log.exception("could not show result %s", turn_id)
            await send_error(interaction, error, lifetime=self.lifetime)

    async def visible_turn(self, interaction: Interaction, turn_id: int | None) -> TurnRecord:
        """The result, when this member may show it here (one answer for every other case)."""
        return await visible_turn(self.services, interaction, turn_id)

    async def images_of(self, interaction: Interaction, turn: TurnRecord) -> list[FittedImage]:
        """The result's images (re-fetched from its message when the files are gone), fitted to
        what may be uploaded here."""
        images = []
        for index in range(len(turn.output_images)):
            try:
                images.append(await self.services.threads.output_image(turn, index))
            except InputError:
                raise gone() from None
        return await fit_for_upload_async(
            [(image.data, image.mime) for image in images],
            per_file_limit=interaction.filesize_limit,
            total_limit=DISCORD_MESSAGE_LIMIT,
        )

    @app_commands.command(
        name=locale_str("history"),
        description=locale_str("Your recent results on a contact sheet (only you see it)"),
    )
    @app_commands.describe(
        member=locale_str("Whose results (another member's: admins only, their results in this server)"),
        page=locale_str("Which page (12 results each, newest first)"),
    )
    async def history(
        self,
        interaction: Interaction,
        member: discord.User | None = None,
        page: app_commands.Range[int, 1, 100_000] = 1,
    ) -> None:
        """A private answer: one contact sheet, a menu to post one of its results, ◀ ▶."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            target = interaction.user.id if member is None else member.id
            guild_id = self.gallery_scope(interaction, target, None)
            await self.show_page(interaction, target, guild_id, page - 1)
        except Exception as error:
            if not isinstance(error, NanoBotError):
                log.exception("could not draw a history page")
            await send_error(interaction, error, lifetime=self.lifetime)

    def gallery_scope(self, interaction: Interaction, member_id: int, guild_id: int | None) -> int | None:
        """Which results a gallery may list: all of the member's own; another member's only for an
        admin (Manage Server), and only those made in this server."""
        if member_id == interaction.user.id:
            return guild_id
        here = interaction.guild_id
        if here is None or not interaction.permissions.manage_guild or guild_id not in (None, here):
            raise Refused(Text("history.admins_only.title"), Text("history.admins_only.body"))
        return here

    async def show_page(
        self, interaction: Interaction, member_id: int, guild_id: int | None, page: int
    ) -> None:
        """Draw one page and put it in the (private) answer."""
        db, locale = self.services.db, user_locale(interaction)
        own = member_id == interaction.user.id
        total = await count_results(db, member_id, guild_id=guild_id, private=own)
        if total == 0:
            empty = (
                t(locale, "history.empty.own") if own else t(locale, "history.empty.member", member=member_id)
            )
            await interaction.edit_original_response(content=empty, attachments=[], view=None)
            return
        pages = math.ceil(total / PER_PAGE)
        page = min(max(page, 0), pages - 1)
        entries = await recent_results(
            db, member_id, guild_id=guild_id, private=own, limit=PER_PAGE, offset=page * PER_PAGE
        )
        sheet = await self.draw(entries, locale)
        await interaction.edit_original_response(
            content=gallery_text(member_id, own, page, pages, total, locale),
            attachments=[discord.File(io.BytesIO(sheet), filename=f"history-{page + 1}.png")],
            view=gallery_view(member_id, guild_id, page, pages, entries, locale),
        )

    async def draw(self, entries: list[ResultEntry], locale: str | None) -> bytes:
        """The contact sheet: each thumbnail made in the image pool one by one (a grey tile for a
        file that is gone), then the sheet; its captions' words in the locale's language."""
        cells = []
        for number, entry in enumerate(entries, 1):
            data = await self.services.blobs.get(entry.image) if entry.image is not None else None
            thumb = await run_image(make_thumbnail, data)
            cells.append(SheetCell(number, job_code(entry.turn_id), prompt_line(entry.prompt, locale), thumb))
        gone = t(locale, "gallery.image_gone")
        if await run_image(font_face, [gone]) is None:  # no font has its letters: English, not boxes
            gone = t(None, "gallery.image_gone")
        return await run_image(draw_sheet, cells, gone=gone)

    async def on_history_page(
        self, interaction: Interaction, member_id: int, guild_id: int | None, page: int
    ) -> None:
        """◀ ▶: the same private message shows another page."""
        await interaction.response.defer()
        try:
            scope = self.gallery_scope(interaction, member_id, guild_id)
            await self.show_page(interaction, member_id, scope, page)
        except Exception as error:
            if not isinstance(error, NanoBotError):
                log.exception("could not turn a history page")
            await send_error(interaction, error, lifetime=self.lifetime)

    async def on_history_pick(self, interaction: Interaction, turn_id: int) -> None:
        """A result chosen in the menu is posted in the channel, as /show would."""
        await self.repost(interaction, turn_id)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Show(bot))
