"""/forget: a member deletes everything the bot stored about them, in every server, after confirming."""

from __future__ import annotations

import contextlib
import logging

import discord
from discord import app_commands
from discord.app_commands import locale_str
from discord.ext import commands

from bot.i18n import Text, t
from bot.storage.forget import ForgetStore, Forgotten
from bot.ui.locale import user_locale
from bot.ui.types import Client, Interaction
from bot.wiring import services_of

log = logging.getLogger(__name__)

#: Seconds the confirmation buttons stay usable.
CONFIRM_SECONDS = 120.0


def summary(forgotten: Forgotten, locale: str | None) -> str:
    """What was removed, as the member reads it, in the locale's language."""
    if forgotten.busy:
        return t(locale, "forget.busy", count=forgotten.busy)
    removed = {
        "results": Text("forget.results", count=forgotten.results),
        "images": Text("forget.images", count=forgotten.images),
        "styles": Text("forget.styles", count=forgotten.styles),
    }
    text = t(locale, "forget.done_prefs" if forgotten.prefs else "forget.done", **removed)
    if forgotten.audit_rows:
        text += " " + t(locale, "forget.audit", count=forgotten.audit_rows)
    return text


class ForgetView(discord.ui.View):
    """Delete my data / Cancel, for the member who asked only; expires after CONFIRM_SECONDS."""

    def __init__(self, store: ForgetStore, asker: Interaction) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self.store = store
        self.asker = asker
        self.done = False
        self.locale = user_locale(asker)
        self.confirm.label = t(self.locale, "forget.button.confirm")
        self.cancel.label = t(self.locale, "forget.button.cancel")

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        """Only the member who ran /forget may answer (the message is theirs alone anyway)."""
        if interaction.user.id == self.asker.user.id:
            return True
        await interaction.response.send_message(
            t(user_locale(interaction), "forget.not_yours"), ephemeral=True
        )
        return False

    @discord.ui.button(style=discord.ButtonStyle.danger)  # labelled in the asker's language
    async def confirm(self, interaction: Interaction, _: discord.ui.Button[ForgetView]) -> None:
        """Acknowledge at once, delete, then say what went."""
        self._finish()
        await interaction.response.edit_message(content=t(self.locale, "forget.deleting"), view=None)
        try:
            text = summary(await self.store.forget(interaction.user.id), self.locale)
            services_of(interaction.client).prefs.evict(interaction.user.id)  # no cached copy lives on
        except Exception:
            log.exception("forgetting a member failed")
            text = t(self.locale, "forget.failed")
        try:
            await interaction.edit_original_response(content=text)
        except discord.HTTPException:  # the token ran out on a very large deletion: say it by DM
            with contextlib.suppress(discord.HTTPException):
                await interaction.user.send(text)

    @discord.ui.button(style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: Interaction, _: discord.ui.Button[ForgetView]) -> None:
        """Nothing happens."""
        self._finish()
        await interaction.response.edit_message(content=t(self.locale, "forget.cancelled"), view=None)

    def _finish(self) -> None:
        """Answered: the buttons go and the timeout no longer applies."""
        self.done = True
        self.stop()

    async def on_timeout(self) -> None:
        """Say the buttons expired (the /forget token outlives CONFIRM_SECONDS)."""
        if self.done:
            return
        try:
            await self.asker.edit_original_response(content=t(self.locale, "forget.expired"), view=None)
        except discord.HTTPException as e:
            log.info("could not mark a /forget confirmation expired (%s)", e.status)


class Forget(commands.Cog):
    """The /forget command."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        services = services_of(bot)
        self.store = ForgetStore(services.db, services.blobs)

    @app_commands.command(
        name=locale_str("forget"),
        description=locale_str("Delete your prompts, results, images, preferences and styles"),
    )
    async def forget(self, interaction: Interaction) -> None:
        """Ask first, privately: the deletion happens only on the member's click."""
        view = ForgetView(self.store, interaction)
        await interaction.response.send_message(t(view.locale, "forget.ask"), view=view, ephemeral=True)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Forget(bot))
