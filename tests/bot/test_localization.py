"""The bot in several languages, through the fake Discord: synced commands carry their translations,
and a member whose Discord speaks Spanish reads Spanish."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.i18n import catalogue
from tests.botenv import GeminiWorld, gemini_world, wait_result

KEY = "l10n-key"
#: Discord locales the catalogue's languages serve.
LOCALES = ("es-ES", "es-419", "pt-BR", "ja")


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[GeminiWorld]:
    async with gemini_world(GeminiWorld, tmp_path, KEY, ("bob",)) as world:
        yield world


def _options(options: list[dict[str, Any]], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for option in options:
        yield f"{path} {option['name']}", option
        yield from _options(option.get("options") or [], f"{path} {option['name']}")


def _english(key: str) -> str | None:
    return catalogue().messages["en"].get(key)


async def test_synced_commands_carry_their_translations(world: GeminiWorld) -> None:
    async with world.bot():
        commands = world.discord.commands
    assert commands
    for command in commands:
        name = command["name"]
        names = command.get("name_localizations") or {}
        assert set(LOCALES) <= set(names), f"{name} lacks name translations: {names}"
        assert names["es-ES"] == names["es-419"]
        assert _english(f"command.{name}.name") == name  # the default is the catalogue's English
        if command["type"] != 1:
            continue  # a context menu has a name only
        descriptions = command.get("description_localizations") or {}
        assert set(LOCALES) <= set(descriptions), f"/{name} lacks description translations"
        assert descriptions["ja"] != command["description"]
        assert _english(f"command.{name}.description") == command["description"]
        for path, option in _options(command.get("options") or [], name):
            if option["type"] in (1, 2):  # a subcommand (group) is named and described like a command
                assert set(LOCALES) <= set(option.get("name_localizations") or {}), f"/{path} lacks names"
                assert _english(f"command.{path}.description") == option["description"]
            else:
                assert (
                    _english(f"command.{path.rsplit(' ', 1)[0]}.option.{option['name']}.description")
                    == (option["description"])
                ), f"/{path}'s description is not the catalogue's"
            described = option.get("description_localizations") or {}
            assert set(LOCALES) <= set(described), f"/{path} lacks description translations"
            for choice in option.get("choices") or []:
                assert set(LOCALES) <= set(choice.get("name_localizations") or {}), f"/{path} {choice}"


async def test_a_spanish_member_reads_a_spanish_error(world: GeminiWorld) -> None:
    async with world.bot():
        world.gemini.script_for_key(KEY, "safety")
        spanish = await wait_result(
            await world.discord.send_slash("imagine", {"prompt": "a pear"}, user="bob", locale="es-ES")
        )
        world.gemini.script_for_key(KEY, "safety")
        english = await wait_result(await world.discord.send_slash("imagine", {"prompt": "a pear"}))
    [es], [en] = spanish["embeds"], english["embeds"]
    assert es["title"] == "🚫 Bloqueado por los filtros de seguridad"
    assert en["title"] == "🚫 Blocked by safety filters"
    assert es["description"] != en["description"]
