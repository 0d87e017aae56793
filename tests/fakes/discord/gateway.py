"""The fake Discord gateway: a websocket speaking the real opcodes to discord.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

from tests.fakes.discord.payloads import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    JSON,
    PRIVILEGED_INTENTS,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

log = logging.getLogger(__name__)

HEARTBEAT_INTERVAL_MS = 41250
MESSAGE_EVENTS = {"MESSAGE_CREATE", "MESSAGE_UPDATE", "MESSAGE_DELETE"}
MEMBER_EVENTS = {"GUILD_MEMBER_ADD", "GUILD_MEMBER_UPDATE", "GUILD_MEMBER_REMOVE"}
GUILD_EVENTS = {"GUILD_CREATE", "GUILD_UPDATE", "GUILD_ROLE_CREATE", "GUILD_ROLE_UPDATE", "CHANNEL_CREATE"}

Transform = Callable[["GatewayConnection", JSON], JSON]


class GatewayConnection:
    """One websocket session (a shard of one bot process)."""

    def __init__(self, ws: web.WebSocketResponse, query: dict[str, str]) -> None:
        self.ws = ws
        self.query = query
        self.session_id: str | None = None
        self.shard: tuple[int, int] = (0, 1)
        self.intents = 0
        self.seq = 0
        self.ready = False
        self.presence_updates: list[JSON] = []

    def owns(self, guild_id: str | None) -> bool:
        """Whether this shard receives events for the guild (DMs go to shard 0)."""
        shard_id, shard_count = self.shard
        if guild_id is None:
            return shard_id == 0
        return (int(guild_id) >> 22) % shard_count == shard_id

    def wants(self, event: str, guild_id: str | None) -> bool:
        """Whether the IDENTIFY intents subscribe to this event."""
        if event in MESSAGE_EVENTS:
            bit = INTENT_DIRECT_MESSAGES if guild_id is None else INTENT_GUILD_MESSAGES
            return bool(self.intents & bit)
        if event in MEMBER_EVENTS:
            return bool(self.intents & INTENT_GUILD_MEMBERS)
        if event in GUILD_EVENTS:
            return bool(self.intents & INTENT_GUILDS)
        return True

    async def send(self, payload: JSON) -> None:
        """Send one plain JSON text frame."""
        await self.ws.send_str(json.dumps(payload))

    async def dispatch(self, event: str, data: JSON) -> None:
        """Send an op 0 dispatch with the next sequence number."""
        self.seq += 1
        await self.send({"op": 0, "t": event, "s": self.seq, "d": data})


class Gateway:
    """Accepts gateway connections, answers IDENTIFY/RESUME/heartbeats and routes dispatches."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.connections: list[GatewayConnection] = []
        self.sessions: dict[str, tuple[tuple[int, int], int, int]] = {}
        self.identify_payloads: list[JSON] = []
        self.identify_close_code: int | None = None

    @property
    def ready_connections(self) -> list[GatewayConnection]:
        """Connections that identified and got READY."""
        return [c for c in self.connections if c.ready]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """Serve one websocket connection until it closes."""
        ws = web.WebSocketResponse(max_msg_size=0, compress=False)
        await ws.prepare(request)
        conn = GatewayConnection(ws, dict(request.query))
        self.connections.append(conn)
        try:
            await conn.send({"op": 10, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}})
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_text(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await ws.close(code=4002, message=b"Error while decoding payload.")
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self._forget(conn)
        return ws

    def _forget(self, conn: GatewayConnection) -> None:
        """Drop a closed connection but keep its session resumable."""
        if conn in self.connections:
            self.connections.remove(conn)
        if conn.session_id is not None:
            self.sessions[conn.session_id] = (conn.shard, conn.intents, conn.seq)
        self.fake._notify()

    async def _on_text(self, conn: GatewayConnection, text: str) -> None:
        """Handle one client frame."""
        try:
            frame = json.loads(text)
        except ValueError:
            await conn.ws.close(code=4002, message=b"Error while decoding payload.")
            return
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            await conn.send({"op": 11})
        elif op == 2:
            await self._identify(conn, data or {})
        elif op == 6:
            await self._resume(conn, data or {})
        elif conn.session_id is None:
            await conn.ws.close(code=4003, message=b"Not authenticated.")
        elif op == 3:
            conn.presence_updates.append(data)
        elif op == 8:
            await self._members_chunk(conn, data or {})
        elif op not in (4,):
            await conn.ws.close(code=4001, message=b"Unknown opcode.")

    async def _identify(self, conn: GatewayConnection, data: JSON) -> None:
        """Check the IDENTIFY payload, then send READY and the guilds this shard owns."""
        self.identify_payloads.append(data)
        code = self._identify_error(conn, data)
        if code is not None:
            await conn.ws.close(code=code[0], message=code[1].encode())
            return
        shard = data.get("shard") or [0, 1]
        conn.shard = (int(shard[0]), int(shard[1]))
        conn.intents = int(data.get("intents") or 0)
        conn.session_id = self.fake._ids.next()
        await conn.dispatch("READY", self.fake._ready_payload(conn))
        if conn.owns(self.fake.guild_id):
            await conn.dispatch("GUILD_CREATE", self.fake._guild_payload(conn.intents))
        conn.ready = True
        self.fake._notify()

    def _identify_error(self, conn: GatewayConnection, data: JSON) -> tuple[int, str] | None:
        """Return the close code Discord would use for a bad IDENTIFY, if any."""
        if conn.session_id is not None:
            return 4005, "Already authenticated."
        if data.get("token") != self.fake.token:
            return 4004, "Authentication failed."
        shard = data.get("shard") or [0, 1]
        if not (len(shard) == 2 and 0 <= int(shard[0]) < int(shard[1])):
            return 4010, "Invalid shard."
        intents = int(data.get("intents") or 0)
        if intents >> 30:
            return 4013, "Invalid intent(s)."
        if intents & PRIVILEGED_INTENTS & ~self.fake.privileged_intents:
            return 4014, "Disallowed intent(s)."
        if self.identify_close_code is not None:
            return self.identify_close_code, "Closed by the test."
        return None

    async def _resume(self, conn: GatewayConnection, data: JSON) -> None:
        """Resume a known session (no replay of missed events) or invalidate it."""
        session_id = str(data.get("session_id"))
        saved = self.sessions.pop(session_id, None) or self._take_session(session_id, conn)
        if saved is None or data.get("token") != self.fake.token:
            await conn.send({"op": 9, "d": False})
            return
        conn.shard, conn.intents, conn.seq = saved
        conn.session_id = str(data["session_id"])
        await conn.dispatch("RESUMED", {})
        conn.ready = True
        self.fake._notify()

    def _take_session(
        self, session_id: str, new: GatewayConnection
    ) -> tuple[tuple[int, int], int, int] | None:
        """Take over a session whose old socket has not finished closing yet."""
        old = next((c for c in self.connections if c.session_id == session_id and c is not new), None)
        if old is None:
            return None
        old.ready, old.session_id = False, None
        return old.shard, old.intents, old.seq

    async def _members_chunk(self, conn: GatewayConnection, data: JSON) -> None:
        """Answer REQUEST_GUILD_MEMBERS with one chunk."""
        members = self.fake._guild_payload(INTENT_GUILD_MEMBERS | conn.intents)["members"]
        query = str(data.get("query") or "").lower()
        members = [m for m in members if m["user"]["username"].lower().startswith(query)]
        chunk = {
            "guild_id": self.fake.guild_id,
            "members": members,
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce") is not None:
            chunk["nonce"] = data["nonce"]
        await conn.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    async def dispatch(
        self, event: str, data: JSON, *, guild_id: str | None, transform: Transform | None = None
    ) -> list[GatewayConnection]:
        """Send an event to every ready connection whose shard and intents want it."""
        sent = []
        for conn in list(self.ready_connections):
            if not (conn.owns(guild_id) and conn.wants(event, guild_id)):
                continue
            payload = transform(conn, data) if transform else data
            with contextlib.suppress(ConnectionResetError, RuntimeError):
                await conn.dispatch(event, payload)
                sent.append(conn)
        return sent

    async def close(self, code: int, message: str = "") -> None:
        """Close every connection with a close code."""
        for conn in list(self.connections):
            conn.ready = False
            with contextlib.suppress(Exception):
                await conn.ws.close(code=code, message=message.encode())

    def owner_intents(self, guild_id: str | None) -> list[int]:
        """IDENTIFY intents of the ready connections that own a guild."""
        return [c.intents for c in self.ready_connections if c.owns(guild_id)]

    def describe(self) -> list[dict[str, Any]]:
        """A summary of the open connections, for debugging."""
        return [
            {"shard": c.shard, "intents": c.intents, "ready": c.ready, "seq": c.seq} for c in self.connections
        ]
