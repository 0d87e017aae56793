"""/show and /history on Discord: a result's embed when posted again, and the gallery's select menu
and page buttons (DynamicItems whose custom_id carries the page, so they work after a restart)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Protocol

import discord

from bot.i18n import Text, t
from bot.imaging.fit import FittedImage
from bot.jobs.ids import job_code
from bot.jobs.prompts import shown_prompt
from bot.jobs.spec import JobResult
from bot.providers.base import Sources
from bot.storage.gallery import ResultEntry
from bot.storage.turns import TurnRecord
from bot.ui.embeds import clip, result_embed
from bot.ui.types import Interaction

#: The cog that handles the gallery's components.
HANDLER = "Show"
PAGE_TEMPLATE = re.compile(
    r"nb:hp:(?P<direction>[pn]):(?P<member>\d{1,20}):(?P<guild>\d{1,20}):(?P<page>\d{1,6})"
)
PICK_TEMPLATE = re.compile(r"nb:hs:(?P<member>\d{1,20}):(?P<guild>\d{1,20})")
#: Discord's limits on a select option's label and description.
LABEL_LIMIT = DESCRIPTION_LIMIT = 100


class GalleryHandler(Protocol):
    """What handles the gallery's clicks (the Show cog)."""

    async def on_history_page(
        self, interaction: Interaction, member_id: int, guild_id: int | None, page: int
    ) -> None: ...

    async def on_history_pick(self, interaction: Interaction, turn_id: int) -> None: ...


def _handler(interaction: Interaction) -> GalleryHandler:
    """The loaded Show cog."""
    cog = interaction.client.get_cog(HANDLER)
    assert cog is not None, "the show cog is not loaded"
    return cog  # type: ignore[return-value]


class PageButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=PAGE_TEMPLATE):
    """◀ or ▶ on a gallery page: `nb:hp:<p|n>:<member>:<guild, 0: every place>:<page to show>`."""

    def __init__(self, direction: str, member_id: int, guild_id: int, page: int, *, disabled: bool = False):
        emoji = "◀️" if direction == "p" else "▶️"
        custom_id = f"nb:hp:{direction}:{member_id}:{guild_id}:{page}"
        button: discord.ui.Button[Any] = discord.ui.Button(
            emoji=emoji, style=discord.ButtonStyle.secondary, custom_id=custom_id, disabled=disabled, row=1
        )
        super().__init__(button)
        self.member_id, self.guild_id, self.page = member_id, guild_id, page

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> PageButton:
        """Rebuild the button from a click."""
        return cls(match["direction"], int(match["member"]), int(match["guild"]), int(match["page"]))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Hand the click to the Show cog."""
        guild_id = self.guild_id or None
        await _handler(interaction).on_history_page(interaction, self.member_id, guild_id, self.page)


class PickSelect(discord.ui.DynamicItem[discord.ui.Select[Any]], template=PICK_TEMPLATE):
    """The gallery's "show one of these" menu: `nb:hs:<member>:<guild>`, each value a job id."""

    def __init__(
        self,
        member_id: int,
        guild_id: int,
        options: Sequence[discord.SelectOption] = (),
        placeholder: str | None = None,
    ) -> None:
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id=f"nb:hs:{member_id}:{guild_id}", placeholder=placeholder, options=list(options), row=0
        )
        super().__init__(select)

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Select[Any], match: re.Match[str]
    ) -> PickSelect:
        """Rebuild the menu from a choice (the chosen value is read back from the interaction)."""
        return cls(int(match["member"]), int(match["guild"]), item.options, item.placeholder)

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Hand the chosen result to the Show cog."""
        values = self.item.values
        if values and values[0].isdigit():
            await _handler(interaction).on_history_pick(interaction, int(values[0]))


def prompt_line(prompt: str, locale: str | None) -> str:
    """A prompt on one line, or "(no prompt)" in the locale's language."""
    return " ".join(shown_prompt(prompt).split()) or t(locale, "gallery.no_prompt")


def _option(number: int, entry: ResultEntry, locale: str | None) -> discord.SelectOption:
    """One result in the menu: its number and job id, its prompt as the description."""
    prompt = prompt_line(entry.prompt, locale)
    return discord.SelectOption(
        label=f"{number} · {job_code(entry.turn_id)}",
        value=str(entry.turn_id),
        description=clip(prompt, DESCRIPTION_LIMIT),
    )


def gallery_view(
    member_id: int,
    guild_id: int | None,
    page: int,
    pages: int,
    entries: Sequence[ResultEntry],
    locale: str | None = None,
) -> discord.ui.View:
    """The menu of this page's results, then ◀ ▶ (each disabled at its end)."""
    view = discord.ui.View(timeout=None)
    guild = guild_id or 0
    options = [_option(n, entry, locale) for n, entry in enumerate(entries, 1)]
    view.add_item(PickSelect(member_id, guild, options, t(locale, "gallery.pick")))
    view.add_item(PageButton("p", member_id, guild, max(page - 1, 0), disabled=page <= 0))
    view.add_item(PageButton("n", member_id, guild, min(page + 1, pages - 1), disabled=page >= pages - 1))
    return view


def gallery_text(
    member_id: int, own: bool, page: int, pages: int, total: int, locale: str | None = None
) -> str:
    """The line above a gallery page."""
    whose = t(locale, "gallery.whose.own") if own else t(locale, "gallery.whose.member", member=member_id)
    return t(locale, "gallery.header", whose=whose, page=page + 1, pages=pages, count=total)


def shown_embed(turn: TurnRecord, files: list[FittedImage], locale: str | None = None) -> discord.Embed:
    """A stored result's embed as it was posted (no run time: it is not a new job), with who made it
    and when."""
    options = turn.options
    ratio, resolution = options.get("aspect_ratio"), options.get("resolution")
    result = JobResult(
        files=files,
        provider=turn.provider or "?",
        model=turn.model or "?",
        prompt=turn.prompt,
        resolution=str(resolution) if resolution else None,
        aspect_ratio=str(ratio) if ratio else None,
        elapsed=0.0,
        text=turn.model_text,
        turn_id=turn.id,
        seed=turn.seed,
        sources=Sources.from_json(options.get("sources")),
        references=len(turn.input_images),
    )
    embed = result_embed(result, Text("show.embed.title", code=job_code(turn.id)), locale)
    run_time = t(locale, "result.field.time")
    for index, field in enumerate(embed.fields):
        if field.name == run_time:
            embed.remove_field(index)
            break
    embed.add_field(name=t(locale, "show.embed.by"), value=f"<@{turn.user_id}>")
    embed.timestamp = turn.created_at
    return embed


def result_file_name(turn_id: int, number: int, image: FittedImage) -> str:
    """A re-posted image's file name: the job id, then its number."""
    return f"{job_code(turn_id).lower()}-{number}.{image.ext}"
