"""What the result buttons do: reroll, subtle and strong variations, upscale ×2/×4, edit (a modal)
and delete."""

from __future__ import annotations

from typing import Any

import discord
from discord.ext import commands

from bot.errors import InputError, NanoBotError, Refused
from bot.i18n import Text, Words, t
from bot.jobs.conversations import Threads
from bot.jobs.prompts import variation_prompt
from bot.jobs.service import JobInput, JobSpec, raw_image
from bot.jobs.spec import new_seed
from bot.storage.turns import TurnRecord
from bot.ui.buttons import CancelButton, TurnButton
from bot.ui.delivery import acknowledge, job_context, send_error, to_interaction
from bot.ui.locale import edit_locale, user_locale
from bot.ui.references import uploaded_input
from bot.ui.types import Client, Interaction
from bot.ui.upload import MAX_UPLOAD_FILES
from bot.wiring import services_of

TITLES = {
    "reroll": Text("buttons.title.reroll"),
    "vsub": Text("buttons.title.vsub"),
    "vstr": Text("buttons.title.vstr"),
    "up2": Text("create.title.upscale", factor=2),
    "up4": Text("create.title.upscale", factor=4),
}
#: File name stems of the results (the action ids are terse).
STEMS = {"vsub": "vary-subtle", "vstr": "vary-strong"}


class EditTurnModal(discord.ui.Modal):
    """Asks for the instruction, then continues the turn's conversation."""

    def __init__(self, cog: Buttons, turn_id: int, locale: str) -> None:
        super().__init__(title=t(locale, "buttons.edit.title"))
        self.cog = cog
        self.turn_id = turn_id
        self.instruction: discord.ui.TextInput[EditTurnModal] = discord.ui.TextInput(
            label=t(locale, "menu.edit.label"), style=discord.TextStyle.paragraph, max_length=2000
        )
        self.add_item(self.instruction)
        self.files: discord.ui.FileUpload[EditTurnModal] = discord.ui.FileUpload(
            min_values=0, max_values=MAX_UPLOAD_FILES, required=False
        )
        described = t(locale, "buttons.edit.references_hint", limit=MAX_UPLOAD_FILES)
        label = t(locale, "upload.references.label")
        self.add_item(discord.ui.Label(text=label, description=described, component=self.files))

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Defer, load the turn (only now: the modal had to open first), run the refine."""
        loading = await acknowledge(interaction)
        cap = self.cog.services.settings.max_input_bytes
        references = [uploaded_input(a, cap) for a in self.files.values]
        turn = await self.cog.live_turn(self.turn_id)
        job = JobSpec(
            kind="refine",
            prompt=self.instruction.value,
            inputs=list(references),
            parent=turn,
            use_history=True,
            **job_context(interaction),
        )
        await self.cog.run(interaction, job, Text("create.title.edit"), "edit", loading=loading)

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
            key = "buttons.cancelled.charged" if outcome == "charged" else "buttons.cancelled.free"
            text = t(edit_locale(interaction), key)
            await interaction.response.edit_message(content=text, embed=None, attachments=[], view=None)
            return
        if outcome == "not yours":  # i18n: not a message (the supervisor's outcome code)
            error = Refused(Text("buttons.not_yours.title"), Text("buttons.not_yours.cancel"))
        else:
            error = Refused(Text("buttons.finished.title"), Text("buttons.finished.body"))
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

    def image_model(self, turn: TurnRecord) -> tuple[str | None, str | None]:
        """Where a variation runs: the result's model when it takes an input image (the result is
        sent as one), else the first configured model that does; with none, the result's (the input
        check then names the limit)."""
        asked = (turn.provider, self.asked_model(turn))
        for provider, model in (asked, *self.services.jobs.router.models()):
            if self._takes_an_image(provider, model):
                return provider, model
        return asked

    def _takes_an_image(self, provider: str | None, model: str | None) -> bool:
        """Whether a configured provider's model accepts at least one input image."""
        try:
            return self.services.jobs.spec_for(provider, model).max_input_images >= 1
        except NanoBotError:  # the provider or model is no longer configured
            return False

    async def stored_turn(self, turn_id: int) -> TurnRecord:
        """The turn a button belongs to, whatever its status."""
        turns = self.services.jobs.turns
        turn = await turns.get(turn_id) if turns is not None else None
        if turn is None:
            raise InputError(Text("buttons.gone"))
        return turn

    async def live_turn(self, turn_id: int) -> TurnRecord:
        """The result a button belongs to, unless it was deleted or never finished."""
        turn = await self.stored_turn(turn_id)
        if turn.status != "done":
            raise InputError(Text("buttons.gone"))
        return turn

    async def _on_click(self, interaction: Interaction, action: str, turn_id: int) -> None:
        """Answer Discord first (a modal, or a deferral), then load the turn and do what the button says."""
        if action == "edit":
            await interaction.response.send_modal(EditTurnModal(self, turn_id, user_locale(interaction)))
        elif action == "del":
            await interaction.response.defer()
            # A deleted turn too: a click again finishes a deletion whose message Discord kept.
            await self._delete(interaction, await self.stored_turn(turn_id))
        else:
            loading = await acknowledge(interaction)
            job = await self._job(interaction, action, await self.live_turn(turn_id))
            await self.run(interaction, job, TITLES[action], STEMS.get(action, action), loading=loading)

    async def _job(self, interaction: Interaction, action: str, turn: TurnRecord) -> JobSpec:
        """The job a button asks for, built from the stored turn."""
        context = job_context(interaction)
        options = turn.options
        if action in ("up2", "up4"):
            return JobSpec(kind="upscale", parent=turn, factor=int(action[2]), **context)
        if action in ("vsub", "vstr"):
            # Both send the result beside the prompt: on every wire format an edit and a generation
            # with a reference are the same request, so the prompt alone makes a variation subtle
            # or strong. One kind, one price: both are a one-reference generation, as Vary was.
            provider, model = self.image_model(turn)
            return JobSpec(
                kind="vary",
                prompt=variation_prompt(action, turn.prompt),
                parent=turn,
                provider=provider,
                model=model,
                aspect_ratio="auto",
                **context,
            )
        return await self._reroll(turn, context, options)

    async def _reroll(self, turn: TurnRecord, context: dict[str, Any], options: dict[str, Any]) -> JobSpec:
        """Same inputs, same options, a new image (a new seed)."""
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
            seed=new_seed(),  # the same seed would make the same image again
            thinking=str(thinking) if (thinking := options.get("thinking")) else None,
            **context,
        )

    async def run(
        self,
        interaction: Interaction,
        job: JobSpec,
        title: Words,
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
            raise Refused(Text("buttons.not_yours.title"), Text("buttons.not_yours.delete"))
        await self.services.jobs.delete_result(turn)
        if interaction.message is None:
            return
        if interaction.message.flags.ephemeral:  # a private result: only its interaction may remove it
            await interaction.delete_original_response()
            return
        try:
            await interaction.message.delete()
        except discord.NotFound:
            pass  # already gone (a second click on a stale copy)
        except discord.HTTPException as e:
            raise Refused(
                Text("buttons.not_removed.title"), Text("buttons.not_removed.body", status=e.status)
            ) from e


async def setup(bot: Client) -> None:
    """Extension entry point."""
    await bot.add_cog(Buttons(bot))
