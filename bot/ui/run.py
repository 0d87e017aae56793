"""Running /imagine and /edit: answer Discord, gather the references, apply the style, hand the job over."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import discord

from bot.errors import InputError
from bot.i18n import Words
from bot.jobs.service import JobSpec
from bot.ui.delivery import job_context, to_interaction
from bot.ui.prefs import acknowledge_with_prefs
from bot.ui.references import Given
from bot.ui.styles import with_style
from bot.ui.types import Interaction
from bot.wiring import services_of

#: More JobSpec arguments a command adds once the interaction is answered (e.g. /edit's latest image).
Extra = Callable[[Interaction, Given], dict[str, Any]]


def no_extra(interaction: Interaction, given: Given) -> dict[str, Any]:
    """A command that adds nothing to the job."""
    return {}


async def run_job(
    job: JobSpec,
    given: Given,
    interaction: Interaction,
    uploaded: list[discord.Attachment],
    _prompt: str | None,
    *,
    title: Words,
    stem: str,
    style: str | None = None,
    extra: Extra = no_extra,
) -> None:
    """Answer the interaction (privately if the member asked), look the references up, hand the job over.

    The arguments after `job` and `given` are what the upload form hands on (its submit's interaction,
    the uploaded files, a prompt it was not asked for), so `partial(run_job, job, given, ...)` is its
    callback; a command without the form passes `[]` and None.
    """
    job, loading = await acknowledge_with_prefs(interaction, job)
    delivery = to_interaction(interaction, title=title, stem=stem, loading_message_id=loading)
    try:
        inputs = given.inputs(interaction, uploaded)
    except InputError as error:
        await delivery.fail(error)
        return
    found = given.finder(interaction)
    more = extra(interaction, given)
    job = replace(job, inputs=inputs, find_references=found, **more, **job_context(interaction))
    if (styled := await with_style(interaction, job, style, delivery)) is not None:
        await services_of(interaction.client).jobs.submit(styled, delivery)
