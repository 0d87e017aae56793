"""FakeDiscord: a local Discord (REST, gateway, CDN) that the real, unmodified discord.py talks to.

    async with FakeDiscord() as fake:
        with discord_overrides(fake):          # or the bot's own DISCORD_API_BASE / GATEWAY_URL
            task = asyncio.create_task(bot.start(fake.token))
            await fake.wait_until_ready()
            inter = await fake.send_slash("imagine", {"prompt": "a cat"})
            await inter.wait_ack()             # the callback body; 3 s rule enforced
            msg = await inter.wait_done()      # the message the user finally sees
            assert fake.files_of(msg)[0][1].startswith(b"\x89PNG")
            assert fake.violations == []
            await bot.close()

World: one guild (`guild_id`) with "general" (`channel_id`) and an nsfw channel (`nsfw_channel_id`),
users "alice" and "admin" (MANAGE_GUILD + MANAGE_MESSAGES), the bot (`bot_user`, id == `app_id`).
Option types of `send_slash` come from the commands the bot synced (inferred from the Python values
when it did not sync). Platform-rule breaches get Discord's real error and a line in `violations`.
Modules: discord_world (guild state), discord_actions (user actions), discord_gateway, discord_rest
(parsing, recording, faults), discord_routes / discord_webhooks (endpoints), discord_messages,
discord_limits, discord_interactions (InteractionHandle), discord_payloads (object builders).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import time
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterator
from types import TracebackType
from typing import Any
from urllib.parse import quote

import discord
import discord.gateway
import discord.http
import yarl
from aiohttp import web

from tests.fakes.discord.actions import ActionsMixin
from tests.fakes.discord.gateway import Gateway, GatewayConnection
from tests.fakes.discord.interactions import (
    WAIT_TIMEOUT,
    CommandUnavailable,
    InteractionFailed,
    InteractionHandle,
)
from tests.fakes.discord.messages import MessageBuilder
from tests.fakes.discord.payloads import (
    FLAG_EPHEMERAL,
    INTENT_MESSAGE_CONTENT,
    JSON,
    PRIVILEGED_INTENTS,
    Snowflakes,
    blank_content,
    iso_now,
    make_attachment,
)
from tests.fakes.discord.rest import (
    API_PREFIX,
    CLIENT_MAX_SIZE,
    Fault,
    RecordedRequest,
    Recorder,
    json_response,
)
from tests.fakes.discord.routes import BotRoutes
from tests.fakes.discord.webhooks import InteractionRoutes
from tests.fakes.discord.world import WorldMixin

__all__ = [
    "CommandUnavailable",
    "FakeDiscord",
    "InteractionFailed",
    "InteractionHandle",
    "RecordedRequest",
    "discord_overrides",
]

MIB = 1024 * 1024


@contextlib.contextmanager
def discord_overrides(fake: FakeDiscord) -> Iterator[None]:
    """Point discord.py's REST base and gateway URL at the fake, restoring both afterwards."""
    old_base = discord.http.Route.BASE
    old_gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = old_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = old_gateway


class FakeDiscord(WorldMixin, ActionsMixin):
    """A wire-level Discord fake with one guild ("general" and an nsfw channel) and two users."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        ack_deadline: float = 3.0,
        token_lifetime: float = 900.0,
        attachment_size_limit: int = 10 * MIB,
        privileged_intents: int = PRIVILEGED_INTENTS,
        shard_count: int = 1,
        attachment_url_lifetime: float | None = None,
        bot_name: str = "nanobot",
    ) -> None:
        self.token = token
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.attachment_size_limit = attachment_size_limit
        self.privileged_intents = privileged_intents
        self.shard_count = shard_count
        self.attachment_url_lifetime = attachment_url_lifetime
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self.messages: defaultdict[str, list[JSON]] = defaultdict(list)
        self.users: dict[str, JSON] = {}
        self.roles: dict[str, JSON] = {}
        self.channels: dict[str, JSON] = {}
        self.sync_count = 0
        self.command_creates: dict[str, int] = {}
        self._ids = Snowflakes()
        self._by_id: dict[str, JSON] = {}
        self._cdn: dict[str, tuple[str, bytes, str]] = {}
        self._interactions: dict[str, InteractionHandle] = {}
        self._by_token: dict[str, InteractionHandle] = {}
        self._modals: dict[str, JSON] = {}
        self._commands: dict[str | None, list[JSON]] = {}
        self._users_by_id: dict[str, JSON] = {}
        self._member_roles: dict[str, list[str]] = {}
        self._dm_channels: dict[str, str] = {}
        self._changed = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._port = 0
        self.gateway = Gateway(self)
        self._recorder = Recorder(self)
        builder = MessageBuilder(self)
        self._bot_routes = BotRoutes(self, builder)
        self._interaction_routes = InteractionRoutes(self, builder)
        self._build_world(bot_name)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen on 127.0.0.1 on a random port."""
        app = web.Application(client_max_size=CLIENT_MAX_SIZE, middlewares=[self._recorder.middleware()])
        app.router.add_get("/gateway", self.gateway.handle)
        self._bot_routes.install(app.router, API_PREFIX)
        self._interaction_routes.install(app.router, API_PREFIX)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._unhandled)
        self._runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=1.0, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Close gateway connections and the HTTP server."""
        await self.gateway.close(1001, "Going away")
        for task in list(self._tasks):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeDiscord:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def base_url(self) -> str:
        """http://127.0.0.1:PORT (only known once started)."""
        if not self._port:
            raise RuntimeError("FakeDiscord is not started: await fake.start() first")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_base(self) -> str:
        """Value for discord.http.Route.BASE."""
        return self.base_url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """Value for DiscordWebSocket.DEFAULT_GATEWAY (and READY.resume_gateway_url)."""
        return self.base_url.replace("http://", "ws://", 1) + "/gateway"

    @property
    def cdn_base(self) -> str:
        """Prefix of attachment URLs."""
        return self.base_url + "/cdn"

    # -- waiting ----------------------------------------------------------------------------

    def _notify(self) -> None:
        """Wake every waiter."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until predicate() is true or raise TimeoutError."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate():
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    async def wait_until_ready(self, timeout: float = WAIT_TIMEOUT, *, connections: int = 1) -> None:
        """Wait until `connections` gateway sessions got READY (+ GUILD_CREATE)."""
        await self._wait(
            lambda: len(self.gateway.ready_connections) >= connections,
            timeout,
            f"{connections} ready gateway connection(s)",
        )

    async def wait_disconnected(self, timeout: float = WAIT_TIMEOUT) -> None:
        """Wait until no gateway connection is open."""
        await self._wait(lambda: not self.gateway.connections, timeout, "gateway disconnects")

    async def wait_for_message(
        self,
        predicate: Callable[[JSON], bool],
        timeout: float = WAIT_TIMEOUT,
        *,
        channel_id: str | None = None,
    ) -> JSON:
        """Wait for a stored channel message (existing ones included) matching predicate."""
        found: list[JSON] = []

        def check() -> bool:
            channels = [channel_id] if channel_id else list(self.messages)
            found[:] = [m for c in channels for m in self.messages.get(c, []) if predicate(m)][:1]
            return bool(found)

        await self._wait(check, timeout, "a channel message matching the predicate")
        return found[0]

    # -- recording and faults ---------------------------------------------------------------

    def _violation(self, text: str) -> None:
        """Record a platform-rule violation by the bot."""
        self.violations.append(text)

    def fail_next(
        self,
        method: str,
        path_regex: str,
        status: int,
        *,
        count: int = 1,
        retry_after: float = 0.2,
        via: bool = True,
        code: int = 0,
        message: str | None = None,
    ) -> None:
        """Answer the next `count` matching API requests with an error (429 or any other status)."""
        pattern = re.compile(path_regex)
        fault = Fault(method.upper(), pattern, status, count, retry_after, via, code, message)
        self._recorder.faults.append(fault)

    def close_gateway(self, code: int, message: str = "") -> asyncio.Task[None]:
        """Close every gateway connection with `code` (e.g. 4004, 4014); awaitable task."""
        return self._spawn(self.gateway.close(code, message))

    def close_on_identify(self, code: int | None) -> None:
        """Make later IDENTIFYs get closed with `code` (None to stop)."""
        self.gateway.identify_close_code = code

    @property
    def identify_payloads(self) -> list[JSON]:
        """IDENTIFY d-payloads received."""
        return self.gateway.identify_payloads

    @property
    def commands(self) -> list[JSON]:
        """All synced commands: global ones, then guild ones (which carry guild_id)."""
        scopes = sorted(self._commands, key=lambda s: s is not None)
        return [c for s in scopes for c in self._commands[s]]

    async def _unhandled(self, request: web.Request) -> web.Response:
        """Routes the fake does not implement."""
        self._violation(f"fake: unhandled route {request.method} {request.path}")
        return json_response({"message": "404: Not Found", "code": 0}, 404)

    # -- tasks and dispatch -----------------------------------------------------------------

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run a coroutine in the background, keeping a reference."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _spawn_dispatch(self, event: str, data: JSON) -> None:
        """Dispatch a guild event if a bot is connected (nothing to do before connect)."""
        if self.gateway.ready_connections:
            self._spawn(self.gateway.dispatch(event, data, guild_id=self.guild_id))

    def _content_visible(self, msg: JSON, intents: int) -> bool:
        """Whether an app with these intents may see the message content."""
        if intents & INTENT_MESSAGE_CONTENT or msg.get("guild_id") is None:
            return True
        if msg["author"]["id"] == self.app_id:
            return True
        return any(u["id"] == self.app_id for u in msg.get("mentions") or [])

    def _visible_copy(self, msg: JSON, intents: int) -> JSON:
        """The message as an app with these intents receives it."""
        out = dict(msg) if self._content_visible(msg, intents) else blank_content(msg)
        if out.get("referenced_message"):
            out["referenced_message"] = self._visible_copy(out["referenced_message"], intents)
        return out

    def _rest_view(self, msg: JSON) -> JSON:
        """The message as REST returns it (content intent as enabled for the app)."""
        return self._visible_copy(msg, self.privileged_intents)

    async def _dispatch_message(self, event: str, msg: JSON) -> None:
        """Send MESSAGE_CREATE/UPDATE with per-connection content blanking and the member."""
        data = dict(msg)
        if msg.get("guild_id"):
            member = self._member_payload(msg["author"]["id"], with_user=False)
            if member is not None:
                data["member"] = member

        def transform(conn: GatewayConnection, payload: JSON) -> JSON:
            return self._visible_copy(payload, conn.intents)

        await self.gateway.dispatch(event, data, guild_id=msg.get("guild_id"), transform=transform)

    # -- message store ----------------------------------------------------------------------

    async def _store(self, msg: JSON) -> None:
        """Store a new message and dispatch MESSAGE_CREATE (ephemeral ones stay private)."""
        self._by_id[msg["id"]] = msg
        if not msg["flags"] & FLAG_EPHEMERAL:
            self.messages[msg["channel_id"]].append(msg)
            self.channels[msg["channel_id"]]["last_message_id"] = msg["id"]
            await self._dispatch_message("MESSAGE_CREATE", msg)
        self._notify()

    async def _edit(self, msg: JSON, fields: JSON) -> None:
        """Apply an edit and dispatch MESSAGE_UPDATE."""
        msg.update(fields)
        msg["edited_timestamp"] = iso_now()
        if not msg["flags"] & FLAG_EPHEMERAL:
            await self._dispatch_message("MESSAGE_UPDATE", msg)
        self._notify()

    async def _delete(self, msg: JSON) -> None:
        """Delete a message and dispatch MESSAGE_DELETE."""
        self._by_id.pop(msg["id"], None)
        channel = self.messages.get(msg["channel_id"], [])
        if msg in channel:
            channel.remove(msg)
            data = {"id": msg["id"], "channel_id": msg["channel_id"]}
            if msg.get("guild_id"):
                data["guild_id"] = msg["guild_id"]
            await self.gateway.dispatch("MESSAGE_DELETE", data, guild_id=msg.get("guild_id"))
        self._notify()

    def _current(self, message: JSON | str) -> JSON:
        """The stored (current) version of a message given as dict or id."""
        message_id = message["id"] if isinstance(message, dict) else str(message)
        stored = self._by_id.get(message_id)
        if stored is None:
            if isinstance(message, dict):
                return message
            raise ValueError(f"unknown message {message_id}")
        return stored

    # -- CDN --------------------------------------------------------------------------------

    def _cdn_put(self, data: bytes, filename: str, content_type: str | None) -> JSON:
        """Store bytes on the CDN and return an attachment object with a signed-looking URL."""
        attachment_id = self._ids.next()
        filename = filename.replace(" ", "_")
        now = int(time.time())
        expires = now + int(self.attachment_url_lifetime or 86400)
        sig = hashlib.sha256(f"{attachment_id}{expires}".encode()).hexdigest()
        url = f"{self.cdn_base}/{attachment_id}/{quote(filename)}?ex={expires:x}&is={now:x}&hm={sig}&"
        att = make_attachment(attachment_id, filename, data, url, content_type)
        self._cdn[attachment_id] = (filename, data, att["content_type"])
        return att

    def upload_attachment(self, data: bytes, filename: str, content_type: str | None = None) -> JSON:
        """Store a user's upload on the fake CDN and return its attachment object."""
        return self._cdn_put(data, filename, content_type)

    def files_of(self, message: JSON | str) -> list[tuple[str, bytes]]:
        """(filename, bytes) of a message's attachments."""
        msg = self._current(message)
        return [self._cdn[str(a["id"])][:2] for a in msg.get("attachments") or []]
