"""/forget: a member deletes everything the bot stored about them, in every server, after confirming."""

from __future__ import annotations

import contextlib
import logging

import discord
from discord import app_commands
from discord.ext import commands

from bot.storage.forget import ForgetStore, Forgotten
from bot.ui.types import Client, Interaction
from bot.wiring import services_of

log = logging.getLogger(__name__)

#: Seconds the confirmation buttons stay usable.
CONFIRM_SECONDS = 120.0

ASK = (
    "🗑️ **Delete everything I stored about you, in every server?**\n"
    "• your prompts and results, and their images (an image stays only while someone else's result "
    "still uses it)\n"
    "• your preferences and your saved styles (server styles you published included)\n"
    "Usage records keep only their cost, without your name or prompt, so servers' totals stay right. "
    "Images already posted in Discord stay in their channels: delete those messages there.\n"
    "Jobs of yours still queued or running must finish first. This cannot be undone."
)
CANCELLED = "Cancelled: nothing was deleted."
FAILED = "⚠️ Something went wrong while deleting your data; please run /forget again."
EXPIRED = "The confirmation expired: nothing was deleted. Run /forget again if you still want it."


def plural(count: int, word: str) -> str:
    """ "1 result", "2 results"."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def summary(forgotten: Forgotten) -> str:
    """What was removed, as the member reads it."""
    if forgotten.busy:
        return (
            f"⏳ You have {plural(forgotten.busy, 'job')} queued or running: nothing was deleted. "
            "Run /forget again once they have finished."
        )
    parts = [plural(forgotten.results, "result"), plural(forgotten.images, "image")]
    if forgotten.prefs:
        parts.append("your preferences")
    parts.append(plural(forgotten.styles, "style"))
    text = f"✅ Removed {', '.join(parts[:-1])} and {parts[-1]}."
    if forgotten.audit_rows:
        text += f" {plural(forgotten.audit_rows, 'usage record')} now keep only their cost."
    return text


class ForgetView(discord.ui.View):
    """Delete my data / Cancel, for the member who asked only; expires after CONFIRM_SECONDS."""

    def __init__(self, store: ForgetStore, asker: Interaction) -> None:
        super().__init__(timeout=CONFIRM_SECONDS)
        self.store = store
        self.asker = asker
        self.done = False

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        """Only the member who ran /forget may answer (the message is theirs alone anyway)."""
        if interaction.user.id == self.asker.user.id:
            return True
        await interaction.response.send_message("This confirmation is not yours.", ephemeral=True)
        return False

    @discord.ui.button(label="Delete my data", style=discord.ButtonStyle.danger)
    async def confirm(self, interaction: Interaction, _: discord.ui.Button[ForgetView]) -> None:
        """Acknowledge at once, delete, then say what went."""
        self._finish()
        await interaction.response.edit_message(content="🗑️ Deleting your data…", view=None)
        try:
            text = summary(await self.store.forget(interaction.user.id))
            services_of(interaction.client).prefs.evict(interaction.user.id)  # no cached copy lives on
        except Exception:
            log.exception("forgetting a member failed")
            text = FAILED
        try:
            await interaction.edit_original_response(content=text)
        except discord.HTTPException:  # the token ran out on a very large deletion: say it by DM
            with contextlib.suppress(discord.HTTPException):
                await interaction.user.send(text)

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: Interaction, _: discord.ui.Button[ForgetView]) -> None:
        """Nothing happens."""
        self._finish()
        await interaction.response.edit_message(content=CANCELLED, view=None)

    def _finish(self) -> None:
        """Answered: the buttons go and the timeout no longer applies."""
        self.done = True
        self.stop()

    async def on_timeout(self) -> None:
        """Say the buttons expired (the /forget token outlives CONFIRM_SECONDS)."""
        if self.done:
            return
        try:
            await self.asker.edit_original_response(content=EXPIRED, view=None)
        except discord.HTTPException as e:
            log.info("could not mark a /forget confirmation expired (%s)", e.status)


class Forget(commands.Cog):
    """The /forget command."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        services = services_of(bot)
        self.store = ForgetStore(services.db, services.blobs)

    @app_commands.command(
        name="forget", description="Delete your prompts, results, images, preferences and styles"
    )
    async def forget(self, interaction: Interaction) -> None:
        """Ask first, privately: the deletion happens only on the member's click."""
        view = ForgetView(self.store, interaction)
        await interaction.response.send_message(ASK, view=view, ephemeral=True)


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Forget(bot))
