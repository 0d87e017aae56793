"""Start the real bot in-process against the fake Discord and fake providers."""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PIL import Image

from bot.app import NanoBot, apply_endpoints, start_bot
from bot.billing.rules import user_subject
from bot.config import Settings
from bot.storage.turns import TurnRecord
from tests.fakes.discord import FakeDiscord, InteractionHandle, discord_overrides
from tests.fakes.providers import FakeGemini
from tests.fakes.settings import make_settings
from tests.fakes.tcp_proxy import TcpProxy
from tests.pg import PG_HOST, PG_PORT, temp_pg_database

#: Seconds after which a wait for the bot's state is taken for a hang. It only bounds a failing test:
#: a passing one never waits for it, however busy the machine is.
HANG = 60.0


def bot_settings(fake: FakeDiscord, data_dir: Path, *providers: dict[str, Any], **overrides: Any) -> Any:
    """Settings that point the bot at the fake Discord, with the given providers."""
    return make_settings(
        *providers,
        discord_token=fake.token,
        discord_api_base=fake.api_base,
        discord_gateway_url=fake.gateway_url,
        data_dir=data_dir,
        **overrides,
    )


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord,
    data_dir: Path,
    *providers: dict[str, Any],
    settings: Settings | None = None,
    **overrides: Any,
) -> AsyncIterator[NanoBot]:
    """The real NanoBot, connected and ready; closed (and discord.py restored) afterwards.

    `settings`, when given, are used as they are (already pointed at the fake), token included, as
    `python -m bot run` uses them: neither providers nor overrides may come with them.
    """
    token = fake.token
    if settings is None:
        settings = bot_settings(fake, data_dir, *providers, **overrides)
    elif providers or overrides:
        raise TypeError("running_bot: pass settings, or providers and overrides, not both")
    else:
        token = settings.discord_token.get_secret_value() if settings.discord_token else ""
    with discord_overrides(fake):
        apply_endpoints(settings)
        bot = NanoBot(settings, guild_ready_timeout=0.1)
        task = asyncio.create_task(start_bot(bot, token))
        try:
            await fake.wait_until_ready(timeout=HANG)
            await asyncio.wait_for(bot.wait_until_ready(), HANG)
            yield bot
        finally:
            await bot.close()
            await asyncio.wait_for(task, HANG)


async def wait_result(inter: InteractionHandle, timeout: float = HANG) -> dict[str, Any]:
    """The interaction's final answer: the original once it carries an embed, or an error followup.

    Queue and progress updates only change the original's text, so they are skipped.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        original = inter.original
        if original is not None and original.get("embeds"):
            return original
        if inter.followups:
            return inter.followups[-1]
        await asyncio.sleep(0.05)
    raise TimeoutError(f"no result for interaction {inter.id} within {timeout} s")


async def settled_usage(fake: FakeDiscord, bot: NanoBot, user: str = "alice") -> tuple[int, int]:
    """A member's (used, reserved) credits today in cents, once no job of theirs holds a reservation
    (a charge is committed just after the user sees the result)."""
    assert bot.quotas is not None
    subject = user_subject(int(fake.users[user]["id"]))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG
    while (found := await bot.quotas.usage(int(fake.guild_id), subject, "day")).reserved_cents:
        if loop.time() > deadline:
            break  # the caller's assertion shows what is still held
        await asyncio.sleep(0.05)
    return found.used_cents, found.reserved_cents


async def eventually(check: Callable[[], bool], timeout: float = HANG, what: str = "condition") -> None:
    """Poll until check() holds (for state outside the fake Discord, whose own waits are evented)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.02)


async def eventually_async(
    check: Callable[[], Awaitable[bool]], timeout: float = 30, what: str = "condition"
) -> None:
    """Poll an async condition (a database read) until it holds; the timeout only ends a hang."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise TimeoutError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.05)


async def linked_turn(bot: NanoBot, message: dict[str, Any]) -> TurnRecord:
    """The turn a result message shows, once linked to it (just after the message is posted)."""
    turns = bot.service.turns
    assert turns is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HANG
    while (turn := await turns.by_message(int(message["id"]))) is None:
        if loop.time() > deadline:
            raise TimeoutError(f"message {message['id']} was never linked to its turn")
        await asyncio.sleep(0.02)
    return turn


@dataclass
class GeminiWorld:
    """The real bot's surroundings in a test: a fake Discord, a fake Gemini (one key), a data folder."""

    discord: FakeDiscord
    gemini: FakeGemini
    data_dir: Path
    key: str

    def entry(self, **extra: Any) -> dict[str, Any]:
        """The fake Gemini as a provider entry."""
        return {
            "name": "google",
            "kind": "gemini",
            "base_url": self.gemini.base_url,
            "api_key": self.key,
            **extra,
        }

    def bot(
        self, *entries: dict[str, Any], **overrides: Any
    ) -> contextlib.AbstractAsyncContextManager[NanoBot]:
        """The real bot on these fakes (the fake Gemini unless other entries are given)."""
        return running_bot(self.discord, self.data_dir, *(entries or (self.entry(),)), **overrides)

    def images_posted(self) -> int:
        """Images the bot has posted in public so far."""
        return images_posted(self.discord)


@dataclass
class OutageWorld:
    """The real bot on PostgreSQL behind a TCP proxy the test can cut: a database outage on demand."""

    discord: FakeDiscord
    gemini: FakeGemini
    proxy: TcpProxy
    db_url: str  # straight to PostgreSQL: the test's own view, never cut
    tmp: Path
    key: str
    outage_budget: float

    def bot(self, **overrides: Any) -> contextlib.AbstractAsyncContextManager[NanoBot]:
        """The bot, reaching its database through the proxy, waiting out outages for outage_budget."""
        entry = {"name": "google", "kind": "gemini", "base_url": self.gemini.base_url, "api_key": self.key}
        return running_bot(
            self.discord,
            self.tmp,
            entry,
            database_url=self.proxy.url_for(self.db_url),
            database_outage_seconds=self.outage_budget,
            heartbeat_interval=0.5,
            **overrides,
        )


OW = TypeVar("OW", bound=OutageWorld)


@contextlib.asynccontextmanager
async def outage_world(kind: type[OW], tmp: Path, key: str, outage_budget: float) -> AsyncIterator[OW]:
    """A throwaway PostgreSQL database behind a proxy, the fakes, and the world around them."""
    async with (
        temp_pg_database() as url,
        TcpProxy(PG_HOST, PG_PORT) as proxy,
        FakeDiscord() as fake,
        FakeGemini(api_key=key) as gemini,
    ):
        yield kind(fake, gemini, proxy, url, tmp, key, outage_budget)
        assert fake.violations == []


def images_posted(discord: FakeDiscord) -> int:
    """Images the bot has posted in public so far."""
    return sum(
        len(m.get("attachments") or [])
        for messages in discord.messages.values()
        for m in messages
        if m["author"]["id"] == discord.app_id
    )


def button_id(message: dict[str, Any], action: str) -> str:
    """The custom_id of one of a result's buttons (`nb:<action>:<turn id>`)."""
    ids = [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]
    [found] = [cid for cid in ids if cid.split(":")[1] == action]
    return found


W = TypeVar("W", bound=GeminiWorld)


@contextlib.asynccontextmanager
async def gemini_world(
    kind: type[W], data_dir: Path, key: str, users: tuple[str, ...] = ()
) -> AsyncIterator[W]:
    """Start the fakes (with these extra members), hand out the world, check no Discord rule was broken."""
    async with FakeDiscord() as fake, FakeGemini(api_key=key) as gemini:
        for user in users:
            fake.add_user(user)
        yield kind(fake, gemini, data_dir, key)
        assert fake.violations == []


def title(message: dict[str, Any]) -> str:
    """The title a user sees: the first embed's, else the plain content."""
    return str(message["embeds"][0]["title"]) if message.get("embeds") else str(message.get("content"))


def text(message: dict[str, Any]) -> str:
    """All the words of a message: content, and the first embed's title and description."""
    embeds = message.get("embeds") or [{}]
    return f"{message.get('content') or ''} {embeds[0].get('title', '')} {embeds[0].get('description', '')}"


def attached_png(discord: FakeDiscord, message: dict[str, Any]) -> tuple[str, Image.Image]:
    """The one file a message carries: its name, and the picture (which must be a PNG) as RGB."""
    [(name, data)] = discord.files_of(message)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "PNG"
        return name, image.convert("RGB")


def image_size(data: bytes) -> tuple[int, int]:
    """Pixel size of encoded image bytes."""
    with Image.open(io.BytesIO(data)) as im:
        return im.size


async def wait_for_text(inter: InteractionHandle, needle: str, timeout: float = HANG) -> dict[str, Any]:
    """The "thinking…" message once it shows the needle (the timeout only ends a hang)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        original = inter.original
        if original is not None and needle in (original.get("content") or ""):
            return original
        await asyncio.sleep(0.05)
    raise AssertionError(f"{needle!r} never shown; last: {inter.original}")


def cancel_id(message: dict[str, Any]) -> str:
    [custom_id] = [c["custom_id"] for row in message["components"] for c in row["components"]]
    assert custom_id.startswith("nb:cancel:")
    return custom_id


def embed_fields(message: dict[str, Any]) -> dict[str, str]:
    """name → value of the fields of a message's one embed (a result's)."""
    [embed] = message["embeds"]
    return {f["name"]: f["value"] for f in embed.get("fields", [])}


@dataclass
class GeminiBot:
    """A running bot on a fake Discord and a fake Gemini, with shortcuts to command it and to read
    what reached the Gemini wire."""

    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot
    prompt: str = "a lighthouse"

    async def command(self, name: str, options: dict[str, Any], **kw: Any) -> dict[str, Any]:
        """Send a slash command and return the first answer the user sees."""
        inter = await self.discord.send_slash(name, options, **kw)
        return await inter.wait_done()

    async def imagine(self, **options: Any) -> dict[str, Any]:
        """/imagine with these options (channel_id: the channel it is sent in)."""
        channel = options.pop("channel_id", None)
        return await self.command("imagine", {"prompt": self.prompt, **options}, channel_id=channel)

    def posts(self) -> list[Any]:
        """The generateContent bodies the fake Gemini received, in order."""
        return [r.json for r in self.gemini.requests if r.method == "POST"]

    def sent(self) -> dict[str, Any]:
        """The last generateContent body the fake Gemini received."""
        body: dict[str, Any] = self.gemini.requests[-1].json
        return body


@contextlib.asynccontextmanager
async def gemini_bot(data_dir: Path, key: str, prompt: str = "a lighthouse") -> AsyncIterator[GeminiBot]:
    """The real bot on a fake Discord and a fake Gemini; no Discord rule may be broken meanwhile."""
    async with FakeDiscord() as fake, FakeGemini(api_key=key) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": key}
        async with running_bot(fake, data_dir, entry) as bot:
            yield GeminiBot(fake, gemini, bot, prompt)
        assert fake.violations == []
