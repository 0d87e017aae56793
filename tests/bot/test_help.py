"""/help through the fake Discord: a private overview with a topic menu; the models and their costs as
this test configured them; the server's rules and the member's credits left after a job; topics
switched in the same message; Spanish for a Spanish-speaking member; nobody else's menu; every page
within Discord's embed limits."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from discord import app_commands

from bot.app import NanoBot
from bot.i18n import catalogue, t
from bot.ui.contexts import DM_CAPABLE
from tests.botenv import running_bot, settled_usage, wait_result
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "help-key"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
EPHEMERAL = 64
#: The test's own cost rules (not the shipped ones), so a page showing them read the configuration.
COSTS = {
    "models": {FLASH: 2.0, PRO: 5.0},
    "resolution": {"0.5K": 0.5, "1K": 1.0, "2K": 1.5, "4K": 3.0},
    "reference_image": 0.25,
    "refine_turn": 0.2,
    "upscale_x2": 0.75,
    "upscale_x4": 1.25,
    "local_upscale": 0.5,
}


@dataclass
class Env:
    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot

    async def command(self, name: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        inter = await self.discord.send_slash(name, options or {}, **kw)
        return await inter.wait_done()

    async def help(self, user: str = "alice", **kw: Any) -> dict[str, Any]:
        """/help's private answer, as it stands."""
        return self.discord._current(await self.command("help", user=user, **kw))

    async def choose(
        self, message: dict[str, Any], topic: str, user: str = "alice", **kw: Any
    ) -> dict[str, Any]:
        """Pick a topic in a help message's menu; the answer the user sees."""
        custom_id = menu(message)["custom_id"]
        inter = await self.discord.send_component(message, custom_id, values=[topic], user=user, **kw)
        return self.discord._current(await inter.wait_done())


def entry(gemini: FakeGemini, models: list[str]) -> dict[str, Any]:
    return {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY, "models": models}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        fake.add_user("bob")
        async with running_bot(fake, tmp_path, entry(gemini, [FLASH, PRO]), costs=COSTS) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


def menu(message: dict[str, Any]) -> dict[str, Any]:
    [select] = [c for row in message["components"] for c in row["components"] if c["type"] == 3]
    return select


def chosen(message: dict[str, Any]) -> str:
    [option] = [o["value"] for o in menu(message)["options"] if o.get("default")]
    return str(option)


def embed_of(message: dict[str, Any]) -> dict[str, Any]:
    [embed] = message["embeds"]
    return embed


def fields(message: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["value"] for f in embed_of(message).get("fields", [])}


def words(message: dict[str, Any]) -> str:
    """Everything the page says: title, description, fields and footer."""
    embed = embed_of(message)
    parts = [
        embed.get("title", ""),
        embed.get("description", ""),
        (embed.get("footer") or {}).get("text", ""),
    ]
    parts += [f"{f['name']}\n{f['value']}" for f in embed.get("fields", [])]
    return "\n".join(parts)


async def test_help_answers_privately_with_an_overview_and_a_menu_of_topics(env: Env) -> None:
    shown = await env.help()
    assert shown["flags"] & EPHEMERAL
    assert [o["value"] for o in menu(shown)["options"]] == [
        "overview",
        "commands",
        "models",
        "rules",
        "refine",
        "privacy",
        "version",
    ]
    assert chosen(shown) == "overview"
    assert menu(shown)["custom_id"] == f"nb:help:{env.discord.users['alice']['id']}"
    start = fields(shown)["Start here"]
    assert start.startswith("`/imagine prompt:") and "aspect_ratio:16:9" in start
    assert "Models and costs" in fields(shown)["Topics"]


async def test_the_models_page_lists_the_configured_models_with_ratios_sizes_and_costs(env: Env) -> None:
    page = await env.choose(await env.help(), "models")
    assert chosen(page) == "models"
    found = fields(page)
    assert list(found) == [f"{FLASH} (google)", f"{PRO} (google)"]
    flash, pro = found[f"{FLASH} (google)"], found[f"{PRO} (google)"]
    assert "1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9" in flash
    assert "Credits per image, by size: 1K: 2\n" in flash and "2K" not in flash  # 2.5 Flash Image is 1K only
    assert "1K: 5 · 2K: 7.5 · 4K: 15" in pro  # 5 × the test's 1, 1.5 and 3
    assert "Up to 3 reference images, +0.25 each" in flash
    assert "Up to 14 reference images, +0.25 each" in pro
    assert "Thinking: low, high" in pro and "Google Search" in pro and "Thinking" not in flash
    description = embed_of(page)["description"]
    assert f"A job without a model uses **{FLASH}**" in description
    assert "+0.2 · upscale ×2: 0.75, ×4: 1.25 (built-in upscaler: 0.5)" in description


async def test_the_models_page_follows_the_servers_default_model_and_multiplier(env: Env) -> None:
    await env.command("settings set", {"model": PRO, "cost_multiplier": 2}, user="admin")
    page = await env.choose(await env.help(), "models")
    assert f"A job without a model uses **{PRO}**" in embed_of(page)["description"]
    assert "multiplies every cost by ×2" in embed_of(page)["description"]
    assert "1K: 10 · 2K: 15 · 4K: 30" in fields(page)[f"{PRO} (google)"]


async def test_the_rules_page_shows_channels_cooldown_and_the_credits_left_after_a_job(env: Env) -> None:
    general = env.discord.channel_id
    await env.command("settings channel", {"channel": general, "allowed": True}, user="admin")
    await env.command("settings set", {"cooldown": 30, "jobs_at_once": 1}, user="admin")
    assert (
        "✅" in (await env.command("quota set", {"scope": "default", "limit": "10"}, user="admin"))["content"]
    )
    result = await wait_result(await env.discord.send_slash("imagine", {"prompt": "an apple"}))
    assert env.discord.files_of(result)
    assert await settled_usage(env.discord, env.bot) == (200, 0)  # one 1K image on Flash: 2 credits

    page = await env.choose(await env.help(), "rules")
    assert embed_of(page)["title"] == "📏 Rules on this server"
    found = fields(page)
    assert found["Where"] == f"Only in <#{general}>\n✅ You can make images in this channel."
    assert found["Cooldown"] == "30 s between your images"
    assert found["Jobs at once"] == "1 running, 10 more waiting in the queue"
    assert found["Your limit"] == "10 credits per day"
    assert (found["Used"], found["Reserved"], found["Left"]) == ("2 credits", "0 credits", "8 credits")
    assert re.fullmatch(r"<t:\d+:R>", found["Resets"])
    usage = fields(await env.command("usage"))  # the same counter /usage reads
    assert usage["Used"] == "2 credits" and usage["Resets"] == found["Resets"]

    elsewhere = await env.choose(await env.help(channel_id=env.discord.nsfw_channel_id), "rules")
    assert fields(elsewhere)["Where"].endswith("🚫 Not in this channel.")


async def test_the_menu_switches_topics_in_the_same_private_message(env: Env) -> None:
    first = await env.help()
    commands = await env.choose(first, "commands")
    assert commands["id"] == first["id"] and commands["flags"] & EPHEMERAL and chosen(commands) == "commands"
    listed = embed_of(commands)["description"]
    assert "**/imagine**" in listed and "`/imagine prompt:a lighthouse at dusk" in listed
    assert "**/help**" in listed and "**Edit image**" in listed
    assert "/quota set" not in listed and "/settings set" not in listed  # admins' commands: not hers

    version = await env.choose(commands, "version")
    assert version["id"] == first["id"] and chosen(version) == "version"
    assert fields(version)["Image services"] == "**google** (gemini): 2 models"
    assert fields(version)["Bot"].startswith("nanobot ")
    assert KEY not in words(version) and env.gemini.base_url not in words(version)

    for topic in ("refine", "privacy", "overview"):
        page = await env.choose(version, topic)
        assert page["id"] == first["id"] and chosen(page) == topic
    refine = await env.choose(version, "refine")
    assert "up to 8 earlier turns, each adding 0.2 credits" in embed_of(refine)["description"]
    privacy = embed_of(await env.choose(version, "privacy"))["description"]
    assert "`/prefs set private:True`" in privacy and "`/forget`" in privacy
    assert "Jobs are kept until they are deleted." in privacy


async def test_an_admin_sees_the_admin_commands(env: Env) -> None:
    listed = embed_of(await env.choose(await env.help(user="admin"), "commands", user="admin"))["description"]
    assert "**/quota set**" in listed and "`/quota set scope:default limit:20 window:week`" in listed
    assert "**/settings channel**" in listed


async def test_a_spanish_speaking_member_gets_spanish(env: Env) -> None:
    shown = await env.help(locale="es-ES")
    imagine = catalogue().lookup("es", "command.imagine.name") or "imagine"
    assert embed_of(shown)["title"] == t("es-ES", "help.overview.title", bot=env.discord.bot_user["username"])
    assert embed_of(shown)["title"].endswith(": ayuda")
    assert fields(shown)["Empieza aquí"].startswith(f"`/{imagine} prompt:un faro al atardecer")
    labels = [o["label"] for o in menu(shown)["options"]]
    assert labels[:3] == ["Resumen", "Comandos", "Modelos y costos"]
    assert menu(shown)["placeholder"] == "Elige un tema…"


async def test_a_spanish_speaking_member_reads_every_topic_in_spanish(env: Env) -> None:
    shown = await env.help(locale="es-ES")
    rules = await env.choose(shown, "rules", locale="es-ES")
    assert embed_of(rules)["title"] == "📏 Reglas de este servidor"
    assert fields(rules)["Tu límite"] == "Sin límite" and fields(rules)["Espera"] == "Ninguna"
    assert [o["label"] for o in menu(rules)["options"]][3] == "Reglas y tus créditos"
    models = await env.choose(rules, "models", locale="es-ES")
    assert "Hasta 14 imágenes de referencia, +0,25 cada una" in fields(models)[f"{PRO} (google)"]
    refused = await env.choose(models, "version", user="bob", locale="es-ES")
    assert embed_of(refused)["title"] == "🔒 Este menú no es tuyo"


async def test_another_member_cannot_use_someones_menu(env: Env) -> None:
    mine = await env.help()
    before = embed_of(mine)
    refused = await env.choose(mine, "rules", user="bob")
    assert refused["id"] != mine["id"] and refused["flags"] & EPHEMERAL
    assert embed_of(refused)["title"] == "🔒 Not your menu"
    assert "use /help to get your own" in embed_of(refused)["description"]
    after = env.discord._current(mine)
    assert embed_of(after) == before and chosen(after) == "overview"


async def test_every_example_names_options_its_command_has(env: Env) -> None:
    leaves = {
        c.qualified_name: c
        for top in env.bot.tree.get_commands()
        for c in (top.walk_commands() if isinstance(top, app_commands.Group) else [top])
        if isinstance(c, app_commands.Command)
    }
    examples = [key for key in catalogue().messages["en"] if key.startswith("help.example.")]
    assert "help.example.imagine" in examples
    for key in examples:
        command = leaves.get(key.removeprefix("help.example."))
        if command is None:  # an example for a command this bot does not register: never shown
            continue
        options = {p.display_name for p in command.parameters}
        for language, book in catalogue().messages.items():
            used = set(re.findall(r"(?:^|\s)([a-z_][a-z0-9_]*):", book[key].format(command="/x")))
            assert used <= options, (
                f"{key} ({language}) names {used - options}, not options of /{command.name}"
            )


async def test_pages_stay_within_discords_limits_with_many_models(tmp_path: Path) -> None:
    many = [f"relay-model-{n}" for n in range(40)]
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        async with running_bot(fake, tmp_path, entry(gemini, many)) as bot:
            env = Env(fake, gemini, bot)
            page = await env.choose(await env.help(), "models")
            embed = embed_of(page)
            assert 0 < len(embed["fields"]) <= 25
            assert embed["footer"]["text"] == f"…and {40 - len(embed['fields'])} more"
            assert sum(len(s) for s in words(page).split("\n")) <= 6000
            for topic in ("commands", "rules", "refine", "privacy", "version"):
                assert chosen(await env.choose(page, topic)) == topic  # the fake refuses an oversized embed
        assert fake.violations == []


@pytest.mark.skipif("help" not in DM_CAPABLE, reason="/help is offered in servers only")
async def test_in_dms_the_rules_page_shows_the_dm_allowance(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        async with running_bot(
            fake, tmp_path, entry(gemini, [FLASH]), costs=COSTS, allow_dms=True, dm_credits=6, dm_cooldown=20
        ) as bot:
            env = Env(fake, gemini, bot)
            page = await env.choose(await env.help(channel_id=fake.dm_channel("alice")), "rules")
            found = fields(page)
            assert embed_of(page)["title"] == "📏 Rules in DMs" and "Where" not in found
            assert found["Your limit"] == "6 credits per day" and found["Left"] == "6 credits"
            assert found["Cooldown"] == "20 s between your images"
            listed = embed_of(await env.choose(page, "commands"))["description"]
            assert "**/imagine**" in listed and "**/usage**" in listed
            assert "/settings" not in listed and "/style" not in listed  # servers only
