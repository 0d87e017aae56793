"""Tests of the fake Discord itself, driven by the real discord.py 2.7.1 and a tiny bot."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any, cast

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from PIL import Image

from tests.botenv import eventually
from tests.fakes.discord import (
    CommandUnavailable,
    FakeDiscord,
    InteractionFailed,
    discord_overrides,
)
from tests.fakes.discord.interactions import WAIT_TIMEOUT

MIB = 1024 * 1024
EVERYONE = 2248473465835073
STYLES = ["anime", "photo", "pixel art", "watercolor"]


def make_png(width: int, height: int) -> bytes:
    """A small PNG."""
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


PNG = make_png(64, 48)


def tiny(interaction: discord.Interaction) -> TinyBot:
    """The bot behind an interaction."""
    return cast(TinyBot, interaction.client)


class Redo(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"redo:(?P<job>[a-z0-9]+)"):
    """A persistent button whose state lives in its custom_id."""

    def __init__(self, job: str) -> None:
        button: discord.ui.Button[Any] = discord.ui.Button(label="Redo", custom_id=f"redo:{job}")
        super().__init__(button)
        self.job = job

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any
    ) -> Redo:
        """Rebuild the item from a click."""
        return cls(match["job"])

    async def callback(self, interaction: discord.Interaction) -> None:
        """Edit the message the button is on."""
        await interaction.response.edit_message(content=f"redone {self.job}")


@app_commands.command(description="Draw a picture")
async def draw(interaction: discord.Interaction, prompt: str) -> None:
    """Defer, then edit the original with a PNG, an embed and a persistent button."""
    await interaction.response.defer(thinking=True)
    await asyncio.sleep(0.1)
    view = discord.ui.View(timeout=None)
    view.add_item(Redo("job1"))
    embed = discord.Embed(title=prompt).set_image(url="attachment://out.png")
    await interaction.edit_original_response(
        content=f"drew {prompt}",
        attachments=[discord.File(io.BytesIO(PNG), "out.png")],
        embed=embed,
        view=view,
    )


@app_commands.command(description="Echo an attachment's size")
async def size(interaction: discord.Interaction, image: discord.Attachment) -> None:
    """Download the attachment and echo its size."""
    data = await image.read()
    await interaction.response.send_message(f"{image.filename}: {len(data)} bytes")


@app_commands.command(description="Acknowledge too late")
async def slow(interaction: discord.Interaction) -> None:
    """Miss the 3-second deadline."""
    await asyncio.sleep(3.5)
    try:
        await interaction.response.defer()
    except discord.HTTPException as exc:
        tiny(interaction).failures.append(exc)


@app_commands.command(description="Edit after a while")
async def expire(interaction: discord.Interaction) -> None:
    """Defer, then edit after 1.5 s."""
    await interaction.response.defer()
    await asyncio.sleep(1.5)
    try:
        await interaction.edit_original_response(content="late")
    except discord.HTTPException as exc:
        tiny(interaction).failures.append(exc)


@app_commands.command(description="Upload an 11 MiB file")
async def big(interaction: discord.Interaction) -> None:
    """Try a file over the 10 MiB limit, then say so."""
    await interaction.response.defer()
    try:
        blob = discord.File(io.BytesIO(b"\0" * (11 * MIB)), "big.bin")
        await interaction.edit_original_response(attachments=[blob])
    except discord.HTTPException as exc:
        tiny(interaction).failures.append(exc)
        await interaction.edit_original_response(content="too big")


@app_commands.command(description="Pong")
async def ping(interaction: discord.Interaction) -> None:
    """Answer at once."""
    await interaction.response.send_message("pong")


async def style_choices(interaction: discord.Interaction, current: str) -> list[Any]:
    """Autocomplete styles."""
    return [app_commands.Choice(name=s, value=s) for s in STYLES if current.lower() in s]


@app_commands.command(description="Pick a style")
@app_commands.autocomplete(name=style_choices)
async def style(
    interaction: discord.Interaction, name: str, strength: app_commands.Range[int, 1, 10] = 5
) -> None:
    """Echo the style."""
    await interaction.response.send_message(f"{name} x{strength}")


async def describe(interaction: discord.Interaction, message: discord.Message) -> None:
    """Message context menu: describe a message, ephemerally."""
    text = f"{len(message.attachments)} file(s): {message.content}"
    await interaction.response.send_message(text, ephemeral=True)


@app_commands.command(description="Several messages")
async def multi(interaction: discord.Interaction) -> None:
    """Ephemeral defer, then two followups (the first one edits the original)."""
    await interaction.response.defer(ephemeral=True, thinking=True)
    await interaction.followup.send("first", file=discord.File(io.BytesIO(PNG), "one.png"))
    await interaction.followup.send("second")


class PromptModal(discord.ui.Modal, title="Describe it"):
    """A one-field modal."""

    prompt: discord.ui.TextInput[Any] = discord.ui.TextInput(label="Prompt", custom_id="prompt")

    async def on_submit(self, interaction: discord.Interaction) -> None:
        """Echo the field."""
        await interaction.response.send_message(f"submitted {self.prompt.value}")


@app_commands.command(description="Open a form")
async def form(interaction: discord.Interaction) -> None:
    """Answer with a modal."""
    await interaction.response.send_modal(PromptModal())


class PickView(discord.ui.View):
    """A message with a select menu."""

    @discord.ui.select(
        custom_id="pick", options=[discord.SelectOption(label="a"), discord.SelectOption(label="b")]
    )
    async def pick(self, interaction: discord.Interaction, select: discord.ui.Select[Any]) -> None:
        """Replace the menu by the choice."""
        await interaction.response.edit_message(content=f"picked {select.values[0]}", view=None)


@app_commands.command(description="Choose")
async def choose(interaction: discord.Interaction) -> None:
    """Send a select menu."""
    await interaction.response.send_message("choose one", view=PickView())


@app_commands.command(description="Admins only")
@app_commands.default_permissions(manage_guild=True)
async def admin_only(interaction: discord.Interaction) -> None:
    """A command hidden from members without MANAGE_GUILD."""
    await interaction.response.send_message("ok")


async def profile(interaction: discord.Interaction, user: discord.Member) -> None:
    """User context menu."""
    await interaction.response.send_message(f"profile of {user.name}")


class TinyBot(commands.Bot):
    """The smallest bot exercising what the real bot does."""

    def __init__(self, *, message_content: bool = True) -> None:
        intents = discord.Intents.default()
        intents.message_content = message_content
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.1)
        self.failures: list[discord.HTTPException] = []
        self.seen: list[discord.Message] = []
        slash: list[Any] = [draw, size, slow, expire, big, ping, style, multi, form, choose, admin_only]
        for command in slash:
            self.tree.add_command(command)
        self.tree.add_command(app_commands.ContextMenu(name="Describe", callback=describe))
        self.tree.add_command(app_commands.ContextMenu(name="Profile", callback=profile))

    async def setup_hook(self) -> None:
        """Register persistent items and sync the tree to the fake."""
        self.add_dynamic_items(Redo)
        await self.tree.sync()

    async def on_message(self, message: discord.Message) -> None:
        """Record user messages; answer replies."""
        if message.author.bot:
            return
        self.seen.append(message)
        if message.reference is not None:
            text = f"got {message.content!r} with {len(message.attachments)} file(s)"
            await message.reply(text, mention_author=False)


@contextlib.asynccontextmanager
async def running(fake: FakeDiscord, bot: TinyBot | None = None) -> AsyncIterator[TinyBot]:
    """Start a bot against the fake and always close it."""
    bot = bot or TinyBot()
    task = asyncio.create_task(bot.start(fake.token))
    try:
        ready = asyncio.create_task(fake.wait_until_ready())
        await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            ready.cancel()
            task.result()
        await ready
        await asyncio.wait_for(bot.wait_until_ready(), WAIT_TIMEOUT)
        yield bot
    finally:
        await bot.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(task, WAIT_TIMEOUT)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A started fake with discord.py pointed at it."""
    async with FakeDiscord() as server:
        with discord_overrides(server):
            yield server


async def test_slash_defer_then_edit_with_file_embed_and_button(fake: FakeDiscord) -> None:
    async with running(fake):
        inter = await fake.send_slash("draw", {"prompt": "a cat"})
        assert (await inter.wait_ack())["type"] == 5
        assert inter.ack_latency is not None and 0 <= inter.ack_latency < 1.0
        msg = await inter.wait_done()

    assert msg["content"] == "drew a cat" and msg["type"] == 20
    assert msg["flags"] & 128 == 0 and msg["interaction_metadata"]["user"]["username"] == "alice"
    assert inter.files(msg) == [("out.png", PNG)]
    att = msg["attachments"][0]
    assert (att["width"], att["height"], att["content_type"]) == (64, 48, "image/png")
    assert msg["embeds"][0]["image"]["url"] == att["url"]
    button = msg["components"][0]["components"][0]
    assert button["custom_id"] == "redo:job1" and isinstance(button["id"], int)
    async with aiohttp.ClientSession() as session, session.get(att["url"]) as resp:
        assert await resp.read() == PNG
    assert fake.messages[fake.channel_id] == [msg]
    assert [c["name"] for c in fake.commands if c["type"] == 1][:2] == ["draw", "size"]
    assert fake.sync_count == 1 and fake.identify_payloads[0]["intents"] == 53608189
    callback = next(r for r in fake.requests if r.route.endswith("/callback"))
    assert callback.status == 200 and callback.query == {"with_response": "1"}
    assert fake.violations == []


async def test_attachment_option_autocomplete_and_context_menu(fake: FakeDiscord) -> None:
    att = fake.upload_attachment(PNG, "in.png")
    async with running(fake):
        inter = await fake.send_slash("size", {"image": att})
        msg = await inter.wait_done()
        assert msg["content"] == f"in.png: {len(PNG)} bytes"
        option = inter.payload["data"]["options"][0]
        assert option == {"name": "image", "type": 11, "value": att["id"]}

        ac = await fake.send_autocomplete("style", {"name": "a"}, focused="name")
        assert (await ac.wait_ack())["type"] == 8
        assert [c["name"] for c in ac.autocomplete_choices or []] == [
            "anime",
            "pixel art",
            "watercolor",
        ]
        with pytest.raises(ValueError, match="outside"):
            await fake.send_slash("style", {"name": "anime", "strength": 11})

        target = await fake.user_message("look at this", attachments=[att])
        menu = await fake.send_message_command("Describe", target)
        reply = await menu.wait_done()
        assert menu.ephemeral and reply["content"] == "1 file(s): look at this"
        assert reply not in fake.messages[fake.channel_id]
    assert fake.violations == []


async def test_missing_the_three_second_deadline_is_refused(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        inter = await fake.send_slash("slow")
        with pytest.raises(InteractionFailed, match="10062"):
            await inter.wait_ack()
        await eventually(lambda: bool(bot.failures))
    assert isinstance(bot.failures[0], discord.NotFound) and bot.failures[0].code == 10062
    assert len(fake.violations) == 1 and "10062" in fake.violations[0]


async def test_file_over_the_upload_limit_gets_413(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        inter = await fake.send_slash("big")
        msg = await inter.wait_done()
    assert msg["content"] == "too big" and msg["attachments"] == []
    assert (bot.failures[0].status, bot.failures[0].code) == (413, 40005)
    assert len(fake.violations) == 1 and "big.bin" in fake.violations[0]


async def test_token_lifetime_is_enforced() -> None:
    async with FakeDiscord(token_lifetime=1.0) as fake, running_with(fake) as bot:
        await fake.send_slash("expire")
        await eventually(lambda: bool(bot.failures))
        assert (bot.failures[0].status, bot.failures[0].code) == (401, 50027)
        assert len(fake.violations) == 1 and "lifetime" in fake.violations[0]


async def test_429_with_via_is_retried(fake: FakeDiscord) -> None:
    fake.fail_next("POST", r"^/interactions/\d+/[^/]+/callback$", 429, retry_after=0.2)
    async with running(fake):
        inter = await fake.send_slash("ping")
        msg = await inter.wait_done()
    assert msg["content"] == "pong"
    statuses = [r.status for r in fake.requests if r.route.endswith("/callback")]
    assert statuses == [429, 200]
    assert fake.violations == []


async def test_message_content_intent_blanking_and_reply(fake: FakeDiscord) -> None:
    async with running(fake, TinyBot(message_content=False)) as bot:
        await fake.user_message("hello there")
        await fake.user_message("hi bot", mention_bot=True)
        await eventually(lambda: len(bot.seen) == 2)
    assert bot.seen[0].content == "" and bot.seen[1].content.endswith("hi bot")

    async with running(fake) as bot:
        inter = await fake.send_slash("draw", {"prompt": "a dog"})
        image = await inter.wait_done()
        user_msg = await fake.user_message("make it blue", reply_to=image, attachments=[("m.png", PNG)])
        reply = await fake.wait_for_message(lambda m: m["type"] == 19 and m["author"].get("bot", False))
    assert reply["content"] == "got 'make it blue' with 1 file(s)"
    assert reply["message_reference"]["message_id"] == user_msg["id"]
    assert fake.violations == []


async def test_bad_token_raises_login_failure(fake: FakeDiscord) -> None:
    bot = TinyBot()
    try:
        with pytest.raises(discord.LoginFailure):
            await bot.start("wrong-token")
    finally:
        await bot.close()
    assert fake.requests[0].status == 401


async def test_gateway_close_4014_raises_privileged_intents_required(fake: FakeDiscord) -> None:
    bot = TinyBot()
    task = asyncio.create_task(bot.start(fake.token))
    try:
        await fake.wait_until_ready()
        await fake.close_gateway(4014)
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(task, WAIT_TIMEOUT)
    finally:
        await bot.close()


async def test_disabled_privileged_intent_is_refused_at_identify() -> None:
    async with FakeDiscord(privileged_intents=0) as fake:
        with discord_overrides(fake):
            bot = TinyBot()
            try:
                with pytest.raises(discord.PrivilegedIntentsRequired):
                    await asyncio.wait_for(bot.start(fake.token), WAIT_TIMEOUT)
            finally:
                await bot.close()


async def test_dynamic_button_survives_a_restart(fake: FakeDiscord) -> None:
    async with running(fake):
        msg = await (await fake.send_slash("draw", {"prompt": "a fox"})).wait_done()
    await fake.wait_disconnected()
    async with running(fake):
        click = await fake.send_component(msg, "redo:job1")
        assert (await click.wait_ack())["type"] == 7
        assert (await click.wait_done())["content"] == "redone job1"
    assert fake.messages[fake.channel_id][0]["content"] == "redone job1"
    assert fake.sync_count == 2 and fake.violations == []


async def test_raw_protocol_rules(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(fake.gateway_url) as ws:
        assert (await ws.receive_json())["op"] == 10
        await ws.send_json({"op": 1, "d": None})
        assert (await ws.receive_json())["op"] == 11
        await ws.send_json({"op": 2, "d": {"token": fake.token, "intents": 513, "properties": {}}})
        assert (await ws.receive_json())["t"] == "READY"
        guild = (await ws.receive_json())["d"]
        assert [m["user"]["id"] for m in guild["members"]] == [fake.app_id]

        inter = await fake.send_slash("anything", {"text": "x", "n": 3})
        event = (await ws.receive_json())["d"]
        for key in ("version", "attachment_size_limit", "app_permissions", "entitlements"):
            assert key in event
        assert event["member"]["flags"] == 0 and event["data"]["options"][1]["type"] == 4
        hook = f"{fake.api_base}/webhooks/{fake.app_id}/{inter.token}?wait=1"
        callback = f"{fake.api_base}/interactions/{inter.id}/{inter.token}/callback"

        async with http.post(hook, json={"content": "early"}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (404, 10015)
        async with http.post(callback, json={"type": 4, "data": {"content": "x" * 2001}}) as resp:
            assert (resp.status, (await resp.json())["code"]) == (400, 50035)
        row = {"type": 1, "components": [{"type": 2, "style": 1, "custom_id": "c" * 101}]}
        body = {"type": 4, "data": {"content": "ok", "components": [row]}}
        async with http.post(callback, json=body) as resp:
            assert resp.status == 400
        ok = {"type": 4, "data": {"content": "ok"}}
        async with http.post(callback, params={"with_response": "1"}, json=ok) as resp:
            assert resp.headers["Content-Type"] == "application/json"
            assert (await resp.json())["resource"]["message"]["content"] == "ok"
        async with http.post(callback, json=ok) as resp:
            assert (resp.status, (await resp.json())["code"]) == (400, 40060)
        async with http.get(f"{fake.api_base}/users/@me") as resp:
            assert (resp.status, await resp.json()) == (401, {"message": "401: Unauthorized", "code": 0})
    assert len(fake.violations) == 4


async def test_followups_modal_select_and_channel_api(fake: FakeDiscord) -> None:
    async with running(fake) as bot:
        inter = await fake.send_slash("multi")
        first = await inter.wait_done()
        await eventually(lambda: len(inter.followups) == 1)
        assert first["id"] == inter.original_id and first["flags"] & 64
        assert first["content"] == "first" and inter.files(first) == [("one.png", PNG)]
        assert fake.messages[fake.channel_id] == inter.followups
        assert inter.followups[0]["content"] == "second"

        opened = await fake.send_slash("form")
        modal = (await opened.wait_ack())["data"]
        submit = await fake.send_modal_submit(modal["custom_id"], {"prompt": "a red fox"})
        assert (await submit.wait_done())["content"] == "submitted a red fox"

        menu = await (await fake.send_slash("choose")).wait_done()
        pick = await fake.send_component(menu, "pick", values=["b"])
        assert (await pick.wait_done())["content"] == "picked b"
        assert menu["components"] == []

        channel = bot.get_channel(int(fake.channel_id))
        assert isinstance(channel, discord.TextChannel)
        sent = await channel.send("hello", file=discord.File(io.BytesIO(PNG), "c.png"))
        await sent.edit(content="hello again")
        fetched = await channel.fetch_message(sent.id)
        assert fetched.content == "hello again" and await fetched.attachments[0].read() == PNG
        history = [m.id async for m in channel.history(limit=5)]
        assert history[0] == sent.id and len(history) == 4
        await sent.delete()
        with pytest.raises(discord.NotFound):
            await channel.fetch_message(sent.id)
        member = await channel.guild.fetch_member(int(fake.users["admin"]["id"]))
        assert member.guild_permissions.manage_guild
    assert fake.violations == []


async def test_permissions_dm_and_user_command(fake: FakeDiscord) -> None:
    async with running(fake):
        with pytest.raises(CommandUnavailable):
            await fake.send_slash("admin_only")
        allowed = await fake.send_slash("admin_only", user="admin")
        assert (await allowed.wait_done())["content"] == "ok"
        assert allowed.payload["member"]["permissions"] == str(EVERYONE | (1 << 5) | (1 << 13))

        dm = await fake.send_slash("ping", channel_id=fake.dm_channel("alice"))
        msg = await dm.wait_done()
        assert msg["content"] == "pong" and "guild_id" not in msg and dm.payload["context"] == 1

        profile_inter = await fake.send_user_command("Profile", "admin")
        assert (await profile_inter.wait_done())["content"] == "profile of admin"
    assert fake.violations == []


async def test_resume_after_a_dropped_connection(fake: FakeDiscord) -> None:
    async with running(fake):
        await fake.close_gateway(4000)
        await fake.wait_until_ready()
        inter = await fake.send_slash("ping")
        assert (await inter.wait_done())["content"] == "pong"
    assert len(fake.identify_payloads) == 1
    assert fake.violations == []


class ShardedBot(commands.AutoShardedBot):
    """An auto-sharded bot that identifies its shards without the 5 s spacing."""

    def __init__(self) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents.default(),
            guild_ready_timeout=0.1,
        )
        self.tree.add_command(ping)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """No identify spacing in tests."""


async def test_auto_sharded_client_gets_events_on_the_owning_shard() -> None:
    async with FakeDiscord(shard_count=2) as fake:
        with discord_overrides(fake):
            bot = ShardedBot()
            task = asyncio.create_task(bot.start(fake.token))
            try:
                await fake.wait_until_ready(connections=2)
                shards = sorted(tuple(p["shard"]) for p in fake.identify_payloads)
                assert shards == [(0, 2), (1, 2)]
                inter = await fake.send_slash("ping")
                assert inter.receivers == 1
                assert (await inter.wait_done())["content"] == "pong"
            finally:
                await bot.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(task, WAIT_TIMEOUT)
        assert fake.violations == []


async def test_server_error_is_retried(fake: FakeDiscord) -> None:
    fake.fail_next("POST", r"/callback$", 500)
    async with running(fake):
        inter = await fake.send_slash("ping")
        assert (await inter.wait_done())["content"] == "pong"
    assert [r.status for r in fake.requests if r.route.endswith("/callback")] == [500, 200]


async def test_raw_guild_commands_late_ack_and_file_limits() -> None:
    async with (
        FakeDiscord(ack_deadline=10.0) as fake,
        aiohttp.ClientSession(headers={"Authorization": f"Bot {fake.token}"}) as http,
        http.ws_connect(fake.gateway_url) as ws,
    ):
        await ws.send_json({"op": 2, "d": {"token": fake.token, "intents": 1, "properties": {}}})
        await fake.wait_until_ready()
        option = {"type": 10, "name": "scale", "description": "x", "required": True}
        cmd = {"name": "zoom", "description": "Zoom", "type": 1, "options": [option]}
        url = f"{fake.api_base}/applications/{fake.app_id}/guilds/{fake.guild_id}/commands"
        async with http.put(url, json=[cmd]) as resp:
            synced = await resp.json()
        assert synced[0]["guild_id"] == fake.guild_id and synced[0]["version"]
        with pytest.raises(ValueError, match="required"):
            await fake.send_slash("zoom")

        inter = await fake.send_slash("zoom", {"scale": 2})
        assert inter.payload["data"]["guild_id"] == fake.guild_id
        assert inter.payload["data"]["options"] == [{"name": "scale", "type": 10, "value": 2.0}]
        inter.created_at -= 3.5
        callback = f"{fake.api_base}/interactions/{inter.id}/{inter.token}/callback"
        async with http.post(callback, params={"with_response": "1"}, json={"type": 5}) as resp:
            assert resp.status == 200
        assert len(fake.violations) == 1 and "Discord allows 3s" in fake.violations[0]

        form = aiohttp.FormData(quote_fields=False)
        attachments = [{"id": i, "filename": f"{i}.png"} for i in range(11)]
        form.add_field("payload_json", json.dumps({"content": "many", "attachments": attachments}))
        for i in range(11):
            form.add_field(f"files[{i}]", PNG, filename=f"{i}.png")
        async with http.post(f"{fake.api_base}/channels/{fake.channel_id}/messages", data=form) as resp:
            assert (resp.status, (await resp.json())["code"]) == (400, 50035)
        assert fake.requests[-1].files[0] == ("files[0]", "0.png", PNG)
        assert len(fake.violations) == 2 and fake.messages[fake.channel_id] == [inter.original]


@contextlib.asynccontextmanager
async def running_with(fake: FakeDiscord) -> AsyncIterator[TinyBot]:
    """Apply the overrides and run a bot against a fake built by the test."""
    with discord_overrides(fake):
        async with running(fake) as bot:
            yield bot
