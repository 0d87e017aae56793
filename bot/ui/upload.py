"""The "More references" modal: a file-upload field (up to 10 images), and a prompt when asked for."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import discord

from bot.errors import NanoBotError
from bot.i18n import Text, Words, render, t
from bot.ui.delivery import send_error
from bot.ui.locale import user_locale
from bot.ui.types import Interaction
from bot.wiring import services_of

log = logging.getLogger(__name__)

#: Discord's most files in one file-upload field.
MAX_UPLOAD_FILES = 10
#: Seconds the form stays usable (Discord keeps a modal open as long as the member likes).
MODAL_TIMEOUT = 15 * 60
#: The form's title unless its opener names it.
TITLE = Text("upload.title")
#: What the modal hands on: the submit's interaction, the uploaded images, the prompt typed (if asked).
Then = Callable[[Interaction, list[discord.Attachment], str | None], Awaitable[None]]


class ReferencesModal(discord.ui.Modal):
    """Upload more reference images (and, from a result's button, say what to do with them)."""

    def __init__(
        self,
        *,
        owner_id: int,
        then: Then,
        locale: str,
        title: Words = TITLE,
        ask_prompt: bool = False,
    ) -> None:
        super().__init__(title=render(title, locale), timeout=MODAL_TIMEOUT)
        self.owner_id = owner_id
        self.then = then
        self.prompt: discord.ui.TextInput[ReferencesModal] | None = None
        if ask_prompt:
            self.prompt = discord.ui.TextInput(
                style=discord.TextStyle.paragraph,
                max_length=4000,
                placeholder=t(locale, "upload.prompt.placeholder"),
            )
            self.add_item(discord.ui.Label(text=t(locale, "upload.prompt.label"), component=self.prompt))
        self.files: discord.ui.FileUpload[ReferencesModal] = discord.ui.FileUpload(
            max_values=MAX_UPLOAD_FILES, min_values=1, required=True
        )
        self.add_item(
            discord.ui.Label(
                text=t(locale, "upload.references.label"),
                description=t(locale, "upload.references.hint", limit=MAX_UPLOAD_FILES),
                component=self.files,
            )
        )

    async def interaction_check(self, interaction: Interaction) -> bool:  # type: ignore[override]
        """Only the member who opened the form submits it."""
        return interaction.user.id == self.owner_id

    async def on_submit(self, interaction: Interaction) -> None:  # type: ignore[override]
        """Hand the images (and the prompt) on: the caller answers the interaction and runs the job."""
        prompt = self.prompt.value.strip() if self.prompt is not None else None
        await self.then(interaction, list(self.files.values), prompt)

    async def on_error(self, interaction: Interaction, error: Exception, /) -> None:  # type: ignore[override]
        """The same private error messages as commands (the "thinking…" message goes)."""
        if not isinstance(error, NanoBotError):
            log.error("references form failed", exc_info=error)
        lifetime = services_of(interaction.client).settings.interaction_token_lifetime
        await send_error(interaction, error, lifetime=lifetime)


async def open_upload_form(interaction: Interaction, then: Then, *, ask_prompt: bool = False) -> None:
    """Answer the interaction with the form (a modal is an answer: nothing may come before it)."""
    modal = ReferencesModal(
        owner_id=interaction.user.id, then=then, locale=user_locale(interaction), ask_prompt=ask_prompt
    )
    await interaction.response.send_modal(modal)
