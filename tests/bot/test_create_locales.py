"""/imagine, /edit and /settings in the member's language, through the fake Discord: the upload form,
a refused reference, the result's title and the settings embed read as the member's Discord speaks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.botenv import GeminiWorld, gemini_world, text, wait_result

KEY = "create-l10n-key"


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[GeminiWorld]:
    async with gemini_world(GeminiWorld, tmp_path, KEY) as world:
        yield world


async def settings_shown(world: GeminiWorld, locale: str) -> dict[str, Any]:
    """/settings show as the admin, in that locale: the embed."""
    inter = await world.discord.send_slash("settings show", {}, user="admin", locale=locale)
    answer = await inter.wait_done()
    [embed] = answer["embeds"]
    return dict(embed)


async def test_settings_show_speaks_the_members_language(world: GeminiWorld) -> None:
    async with world.bot():
        english = await settings_shown(world, "en-US")
        spanish = await settings_shown(world, "es-ES")
        japanese = await settings_shown(world, "ja")
    assert english["title"] == "Server settings"
    assert spanish["title"] == "Ajustes del servidor"
    assert japanese["title"] == "サーバー設定"
    shown = {f["name"]: f["value"] for f in spanish["fields"]}
    assert shown["Canales permitidos"] == "todos los canales"
    assert shown["Seguridad"].startswith("predeterminado")
    assert shown["Frases bloqueadas"] == "ninguna"


async def test_a_refused_blocklist_phrase_is_explained_in_japanese(world: GeminiWorld) -> None:
    async with world.bot():
        inter = await world.discord.send_slash(
            "settings blocklist", {"action": "add", "phrase": "\u200b"}, user="admin", locale="ja"
        )
        refused = await wait_result(inter)
    assert "不可視文字を除くと、そのフレーズは空になります" in text(refused)


async def test_a_bad_reference_is_refused_in_spanish(world: GeminiWorld) -> None:
    async with world.bot():
        options = {"prompt": "a pear", "references": "not-a-link"}
        spanish = await wait_result(await world.discord.send_slash("imagine", options, locale="es-ES"))
        english = await wait_result(await world.discord.send_slash("imagine", options))
    assert "`not-a-link` no es un enlace a un mensaje de Discord" in text(spanish)
    assert "`not-a-link` is neither a link to a Discord message" in text(english)
    assert world.gemini.calls == 0


async def test_the_upload_form_is_in_portuguese(world: GeminiWorld) -> None:
    async with world.bot():
        opened = await world.discord.send_slash(
            "imagine", {"prompt": "a pear", "upload": True}, locale="pt-BR"
        )
        await opened.wait_ack()
    assert opened.modal is not None
    assert opened.modal["title"] == "Mais referências"
    labels = [row.get("label") for row in opened.modal["components"]]
    assert "Imagens de referência" in labels, opened.modal


async def test_a_result_is_titled_in_the_members_language(world: GeminiWorld) -> None:
    async with world.bot():
        result = await wait_result(await world.discord.send_slash("edit", {"prompt": "x"}, locale="ja"))
        made = await wait_result(
            await world.discord.send_slash("imagine", {"prompt": "a pear"}, locale="es-ES")
        )
    assert made["embeds"][0]["title"] == "🍌 Imaginar"
    assert "このチャンネルにはまだ私の画像がありません" in text(result)
