"""Buttons on every result, as DynamicItems whose custom_id carries the turn id (they survive restarts)."""

from __future__ import annotations

import re
from typing import Any, Protocol

import discord

from bot.i18n import Text, Words, render, t
from bot.ui.types import Interaction

#: action → (label, emoji, style, row). Rows hold at most 5 buttons: new images on the first row,
#: the rest (upscales, edit, delete) on the second, so each row keeps room for one more.
ACTIONS: dict[str, tuple[Words, str, discord.ButtonStyle, int]] = {
    "reroll": (Text("result.button.reroll"), "🔁", discord.ButtonStyle.secondary, 0),
    "vsub": (Text("result.button.vary_subtle"), "🔀", discord.ButtonStyle.secondary, 0),
    "vstr": (Text("result.button.vary_strong"), "🌀", discord.ButtonStyle.secondary, 0),
    "up2": ("×2", "⬆️", discord.ButtonStyle.secondary, 1),
    "up4": ("×4", "⬆️", discord.ButtonStyle.secondary, 1),
    "edit": (Text("result.button.edit"), "✏️", discord.ButtonStyle.primary, 1),
    "del": (Text("result.button.delete"), "🗑️", discord.ButtonStyle.danger, 1),
}
#: Actions of buttons no longer offered, still on results posted before: each is handled as the
#: action it maps to. The single 🔀 Vary edited the result keeping its subject and style, which is
#: what a subtle variation does.
LEGACY: dict[str, str] = {"vary": "vsub"}
TEMPLATE = re.compile(rf"nb:(?P<action>{'|'.join((*ACTIONS, *LEGACY))}):(?P<turn>\d{{1,20}})")


class ButtonHandler(Protocol):
    """What handles a click (the Buttons cog)."""

    async def on_turn_button(self, interaction: Interaction, action: str, turn_id: int) -> None: ...


class TurnButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=TEMPLATE):
    """One result button: `nb:<action>:<turn id>` (labelled in the language of the result's message)."""

    def __init__(self, action: str, turn_id: int, locale: str | None = None) -> None:
        label, emoji, style, row = ACTIONS[action]
        button: discord.ui.Button[Any] = discord.ui.Button(
            label=render(label, locale), emoji=emoji, style=style, custom_id=f"nb:{action}:{turn_id}", row=row
        )
        super().__init__(button)
        self.action = action
        self.turn_id = turn_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> TurnButton:
        """Rebuild the button from a click, after a restart as before (an old button as its successor)."""
        action = LEGACY.get(match["action"], match["action"])
        return cls(action, int(match["turn"]))

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Hand the click to the Buttons cog."""
        handler = interaction.client.get_cog("Buttons")
        assert handler is not None, "the buttons cog is not loaded"
        await handler.on_turn_button(interaction, self.action, self.turn_id)  # type: ignore[attr-defined]


def result_view(turn_id: int | None, locale: str | None = None) -> discord.ui.View | None:
    """The buttons for a result, in the locale's language (None when the result has no stored turn)."""
    if turn_id is None:
        return None
    view = discord.ui.View(timeout=None)
    for action in ACTIONS:
        view.add_item(TurnButton(action, turn_id, locale))
    return view


CANCEL_TEMPLATE = re.compile(r"nb:cancel:(?P<job>[0-9a-z]{1,40})")


class CancelButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CANCEL_TEMPLATE):
    """❌ Cancel on a queued or running job: `nb:cancel:<job id>`."""

    def __init__(self, job_id: str, *, charged: bool = False, locale: str | None = None) -> None:
        label = t(locale, "cancel.label.charged" if charged else "cancel.label")
        button: discord.ui.Button[Any] = discord.ui.Button(
            label=label, emoji="❌", style=discord.ButtonStyle.secondary, custom_id=f"nb:cancel:{job_id}"
        )
        super().__init__(button)
        self.job_id = job_id

    @classmethod
    async def from_custom_id(  # type: ignore[override]
        cls, interaction: Interaction, item: discord.ui.Button[Any], match: re.Match[str]
    ) -> CancelButton:
        """Rebuild the button from a click."""
        return cls(match["job"])

    async def callback(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Hand the click to the Buttons cog."""
        handler = interaction.client.get_cog("Buttons")
        assert handler is not None, "the buttons cog is not loaded"
        await handler.on_cancel(interaction, self.job_id)  # type: ignore[attr-defined]


def cancel_view(job_id: str, *, charged: bool = False, locale: str | None = None) -> discord.ui.View:
    """The Cancel button shown while a job waits or runs (saying so once a cancel would be charged),
    in the locale's language."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, charged=charged, locale=locale))
    return view
