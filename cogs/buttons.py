"""What the result buttons do: reroll, vary, upscale ×2/×4, edit (a modal) and delete."""

from __future__ import annotations

from typing import Any

import discord
from discord.ext import commands

from bot.errors import InputError, Refused
from bot.jobs.conversations import Threads
from bot.jobs.service import JobInput, JobSpec, raw_image
from bot.storage.turns import TurnRecord
from bot.ui.buttons import CancelButton, TurnButton
from bot.ui.delivery import acknowledge, job_context, send_error, to_interaction
from bot.ui.types import Client, Interaction
from bot.wiring import services_of

VARY_PROMPT = "Create a variation of this image with the same subject and style. {prompt}"
TITLES = {"reroll": "🔁 Reroll", "vary": "🔀 Variation", "up2": "⬆️ Upscale x2", "up4": "⬆️ Upscale x4"}


class EditTurnModal(discord.ui.Modal, title="Edit this image"):
    """Asks for the instruction, then continues the turn's conversation."""

    instruction: discord.ui.TextInput[EditTurnModal] = discord.ui.TextInput(
        label="What should change?", style=discord.TextStyle.paragraph, max_length=2000
    )

    def __init__(self, cog: Buttons, turn_id: int) -> None:
        super().__init__()
        self.cog = cog
        self.turn_id = turn_id

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Defer, load the turn (only now: the modal had to open first), run the refine."""
        loading = await acknowledge(interaction)
        turn = await self.cog.live_turn(self.turn_id)
        job = JobSpec(
            kind="refine",
            prompt=self.instruction.value,
            parent=turn,
            use_history=True,
            **job_context(interaction),
        )
        await self.cog.run(interaction, job, "✏️ Edit", "edit", loading=loading)

    async def on_error(  # type: ignore[override]
        self, interaction: Interaction, error: Exception
    ) -> None:
        """Same error messages as commands."""
        await send_error(interaction, error, lifetime=self.cog.services.settings.interaction_token_lifetime)


class Buttons(commands.Cog):
    """Registers the dynamic buttons and handles their clicks."""

    def __init__(self, bot: Client) -> None:
        self.bot = bot
        self.services = services_of(bot)

    async def cog_load(self) -> None:
        """Clicks on results from any earlier run are dispatched to TurnButton (and CancelButton)."""
        self.bot.add_dynamic_items(TurnButton, CancelButton)

    async def cog_unload(self) -> None:
        """Stop dispatching clicks here."""
        self.bot.remove_dynamic_items(TurnButton, CancelButton)

    async def on_cancel(self, interaction: Interaction, job_id: str) -> None:
        """❌ Cancel: the requester or a member with Manage Messages; the reservation is refunded."""
        moderator = interaction.permissions.manage_messages
        outcome = self.services.jobs.supervisor.cancel(job_id, interaction.user.id, moderator=moderator)
        if outcome in ("cancelled", "charged"):
            text = (
                "❌ Cancelled. The image service had already started on it, so this job is charged."
                if outcome == "charged"
                else "❌ Cancelled. Nothing was charged."
            )
            await interaction.response.edit_message(content=text, embed=None, attachments=[], view=None)
            return
        if outcome == "not yours":
            error = Refused(
                "🔒 Not yours", "Only the person who asked for this job or a moderator can cancel it."
            )
        else:
            error = Refused("Already finished", "That job is no longer queued or running.")
        await send_error(interaction, error, lifetime=self.services.settings.interaction_token_lifetime)

    @property
    def threads(self) -> Threads:
        """The conversation reader."""
        assert self.services.jobs.threads is not None
        return self.services.jobs.threads

    async def on_turn_button(self, interaction: Interaction, action: str, turn_id: int) -> None:
        """Dispatch a click; every failure gets the usual specific message."""
        try:
            await self._on_click(interaction, action, turn_id)
        except Exception as error:
            await send_error(interaction, error, lifetime=self.services.settings.interaction_token_lifetime)

    def asked_model(self, turn: TurnRecord) -> str | None:
        """The model a result was asked of, when its provider still serves it (a provider may report
        its own name for the model, as nano-banana-pro.net does: then the provider's default)."""
        asked = turn.options.get("requested_model") or turn.model
        served = any(p == turn.provider and m == asked for p, m in self.services.jobs.router.models())
        return str(asked) if served else None

    async def stored_turn(self, turn_id: int) -> TurnRecord:
        """The turn a button belongs to, whatever its status."""
        turns = self.services.jobs.turns
        turn = await turns.get(turn_id) if turns is not None else None
        if turn is None:
            raise InputError("That image is no longer in my records")
        return turn

    async def live_turn(self, turn_id: int) -> TurnRecord:
        """The result a button belongs to, unless it was deleted or never finished."""
        turn = await self.stored_turn(turn_id)
        if turn.status != "done":
            raise InputError("That image is no longer in my records")
        return turn

    async def _on_click(self, interaction: Interaction, action: str, turn_id: int) -> None:
        """Answer Discord first (a modal, or a deferral), then load the turn and do what the button says."""
        if action == "edit":
            await interaction.response.send_modal(EditTurnModal(self, turn_id))
        elif action == "del":
            await interaction.response.defer()
            # A deleted turn too: a click again finishes a deletion whose message Discord kept.
            await self._delete(interaction, await self.stored_turn(turn_id))
        else:
            loading = await acknowledge(interaction)
            job = await self._job(interaction, action, await self.live_turn(turn_id))
            await self.run(interaction, job, TITLES[action], action, loading=loading)

    async def _job(self, interaction: Interaction, action: str, turn: TurnRecord) -> JobSpec:
        """The job a button asks for, built from the stored turn."""
        context = job_context(interaction)
        options = turn.options
        if action in ("up2", "up4"):
            return JobSpec(kind="upscale", parent=turn, factor=int(action[2]), **context)
        if action == "vary":
            return JobSpec(
                kind="vary",
                prompt=VARY_PROMPT.format(prompt=turn.prompt).strip(),
                parent=turn,
                provider=turn.provider,
                model=self.asked_model(turn),
                aspect_ratio="auto",
                **context,
            )
        return await self._reroll(turn, context, options)

    async def _reroll(self, turn: TurnRecord, context: dict[str, Any], options: dict[str, Any]) -> JobSpec:
        """Same inputs, same options, a new image."""
        inputs: list[JobInput] = [raw_image(i) for i in await self.threads.input_images(turn)]
        if turn.kind == "upscale":
            factor = int(str(options.get("factor", 2)))
            return JobSpec(kind="upscale", inputs=inputs, parent=turn, factor=factor, **context)
        parent = turn
        use_history = False
        if turn.kind == "refine" and turn.parent_id is not None and self.services.jobs.turns is not None:
            parent = await self.services.jobs.turns.get(turn.parent_id) or turn
            use_history = parent is not turn
        ratio = options.get("aspect_ratio")
        resolution = options.get("resolution")
        return JobSpec(
            kind="reroll",
            prompt=turn.prompt,
            inputs=inputs,
            parent=parent,
            use_history=use_history,
            parent_image=False,
            provider=turn.provider,
            model=self.asked_model(turn),
            aspect_ratio=str(ratio) if ratio else None,
            resolution=str(resolution) if resolution else None,
            count=int(str(options.get("count", 1))),
            **context,
        )

    async def run(
        self,
        interaction: Interaction,
        job: JobSpec,
        title: str,
        stem: str,
        *,
        loading: int | None = None,
    ) -> None:
        """Run the job (the interaction is already answered), deliver the result (with its buttons)."""
        delivery = to_interaction(interaction, title=title, stem=stem, loading_message_id=loading)
        await self.services.jobs.submit(job, delivery)

    async def _delete(self, interaction: Interaction, turn: TurnRecord) -> None:
        """The requester or a member with Manage Messages may delete a result: its turn is marked
        deleted and its image files removed (unless another result uses them), then the message goes."""
        allowed = interaction.user.id == turn.user_id or interaction.permissions.manage_messages
        if not allowed:
            raise Refused("🔒 Not yours", "Only the person who made this image or a moderator can delete it.")
        await self.services.jobs.delete_result(turn)
        if interaction.message is None:
            return
        try:
            await interaction.message.delete()
        except discord.NotFound:
            pass  # already gone (a second click on a stale copy)
        except discord.HTTPException as e:
            raise Refused(
                "🗑️ Message not removed",
                f"The image is deleted from my records, but Discord would not remove its message "
                f"(HTTP {e.status}). Click 🗑️ again, or remove the message yourself.",
            ) from e


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Buttons(bot))
