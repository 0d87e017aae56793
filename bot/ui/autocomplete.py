"""Autocomplete for model, ratio, resolution, thinking and search (only what the chosen model supports),
and for saved styles."""

from __future__ import annotations

import functools

from discord import app_commands

from bot.errors import InputError, NanoBotError
from bot.i18n import Text, catalogue, t
from bot.providers.base import ModelSpec
from bot.ui.locale import user_locale
from bot.ui.types import Interaction
from bot.wiring import services_of

MAX_CHOICES = 25
AUTO = "auto"
#: What the search option takes (offered as "on" and "off", for a model with Google Search grounding).
SEARCH_WORDS = {"on": True, "yes": True, "true": True, "off": False, "no": False, "false": False}


def _spec(interaction: Interaction) -> ModelSpec | None:
    """The spec of the model picked so far in this command (the default when none)."""
    model = getattr(interaction.namespace, "model", None) or None
    try:
        return services_of(interaction.client).jobs.spec_for(None, model)
    except NanoBotError:
        return None


def _filtered(
    values: list[str], current: str, names: dict[str, str] | None = None
) -> list[app_commands.Choice[str]]:
    """At most 25 choices whose value (or shown name) contains what the user typed."""
    needle = current.lower().strip()
    shown = names or {}
    return [
        app_commands.Choice(name=shown.get(v, v), value=v)
        for v in values
        if needle in v.lower() or needle in shown.get(v, v).lower()
    ][:MAX_CHOICES]


async def model_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """Configured providers' models, named with their provider."""
    needle = current.lower().strip()
    seen: set[str] = set()
    choices = []
    for provider, model in services_of(interaction.client).router.models():
        if model in seen or (needle and needle not in model.lower() and needle not in provider):
            continue
        seen.add(model)
        choices.append(app_commands.Choice(name=f"{model} ({provider})"[:100], value=model))
    return choices[:MAX_CHOICES]


async def ratio_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The chosen model's aspect ratios."""
    spec = _spec(interaction)
    return _filtered(list(spec.aspect_ratios) if spec else [], current)


async def edit_ratio_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """ "auto" (keep the input's ratio), then the chosen model's aspect ratios."""
    spec = _spec(interaction)
    auto = {AUTO: t(user_locale(interaction), "choice.ratio.auto")}
    return _filtered([AUTO, *(spec.aspect_ratios if spec else ())], current, auto)


async def resolution_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The chosen model's resolutions."""
    spec = _spec(interaction)
    return _filtered(list(spec.resolutions) if spec else [], current)


async def thinking_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The chosen model's thinking levels (none for a model that takes no thinking option)."""
    spec = _spec(interaction)
    return _filtered(list(spec.thinking_levels) if spec else [], current)


async def search_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """ "on" and "off" for a model with Google Search grounding; nothing for one without."""
    spec = _spec(interaction)
    locale = user_locale(interaction)
    names = {"on": t(locale, "choice.on_off.on"), "off": t(locale, "choice.on_off.off")}
    return _filtered(["on", "off"] if spec and spec.grounding else [], current, names)


async def style_choices(interaction: Interaction, current: str) -> list[app_commands.Choice[str]]:
    """The member's own styles, then this server's (an own style hides a server one of its name)."""
    found = await services_of(interaction.client).styles.visible(interaction.user.id, interaction.guild_id)
    needle, seen, locale = current.lower().strip(), set(), user_locale(interaction)
    choices = []
    for style in found:
        if style.name.lower() in seen or needle not in style.name.lower():
            continue
        seen.add(style.name.lower())
        key = "create.style_choice.server" if style.is_server else "create.style_choice.yours"
        choices.append(app_commands.Choice(name=t(locale, key, name=style.name)[:100], value=style.name))
    return choices[:MAX_CHOICES]


def search_option(value: str | None) -> bool | None:
    """The search option as typed: True, False, or None when left out (the server's default)."""
    word = (value or "").strip().lower()
    if not word:
        return None
    typed = typed_search_words()
    if word not in typed:
        raise InputError(Text("create.search.invalid"))
    return typed[word]


@functools.cache
def typed_search_words() -> dict[str, bool]:
    """What a member may type for on and off: the English words, and the choices' names in every
    language (a Spanish member who types "activado" rather than picking it means on)."""
    words = dict(SEARCH_WORDS)
    for messages in catalogue().messages.values():
        for key, value in (("choice.on_off.on", True), ("choice.on_off.off", False)):
            if name := messages.get(key):
                words.setdefault(name.strip().lower(), value)
    return words
