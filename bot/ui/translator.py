"""Slash commands in the member's language: discord.py's Translator backed by the message catalogue.

Every command, group, option and choice text is a `locale_str`; its catalogue key is derived from
where it sits (`command.<qualified name>.name|description`, `command.<qualified name>.option.<option
as Discord shows it>.description`), or given as `locale_str(..., key="...")` (choices). The English
words stay in the code because discord.py sends them as the defaults; a test keeps them equal to the
catalogue's.
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.app_commands import TranslationContextLocation as Where

from bot.i18n import catalogue, language_of
from bot.i18n.catalogue import SOURCE


def key_of(string: app_commands.locale_str, context: app_commands.TranslationContextTypes) -> str | None:
    """The catalogue key of a command text, or None for a text the catalogue does not hold."""
    given = string.extras.get("key")
    if isinstance(given, str):
        return given
    data: Any = context.data
    where = context.location
    if where in (Where.command_name, Where.group_name):
        return f"command.{data.qualified_name}.name"
    if where in (Where.command_description, Where.group_description):
        return f"command.{data.qualified_name}.description"
    if where in (Where.parameter_name, Where.parameter_description):
        part = "name" if where is Where.parameter_name else "description"
        return f"command.{data.command.qualified_name}.option.{data.display_name}.{part}"
    return None


class CatalogueTranslator(app_commands.Translator):
    """Looks command texts up in the catalogue; English (and a missing key) keeps discord.py's default."""

    async def translate(
        self,
        string: app_commands.locale_str,
        locale: discord.Locale,
        context: app_commands.TranslationContextTypes,
    ) -> str | None:
        """The text in the locale's language, or None when there is no translation."""
        language = language_of(locale.value)
        key = key_of(string, context)
        if language == SOURCE or key is None:
            return None
        return catalogue().messages[language].get(key) or None
