"""Bot-token REST routes of the fake Discord (users, app, commands, channels, guilds, CDN)."""

from __future__ import annotations

import copy
import time
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord.limits import DiscordError, check_command_set, invalid_form, not_found
from tests.fakes.discord.messages import CHANNEL_FLAGS, MessageBuilder
from tests.fakes.discord.payloads import FLAG_EPHEMERAL, JSON, iso_now
from tests.fakes.discord.rest import json_response, no_content, parse_body

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

MAX_DAILY_COMMAND_CREATES = 200
COMMAND_COMPARE_KEYS = (
    "description",
    "options",
    "default_member_permissions",
    "nsfw",
    "contexts",
    "integration_types",
    "dm_permission",
)


class BotRoutes:
    """Routes that need `Authorization: Bot <token>` plus the CDN."""

    def __init__(self, fake: FakeDiscord, builder: MessageBuilder) -> None:
        self.fake = fake
        self.builder = builder
        self._nonces: dict[str, JSON] = {}

    def install(self, router: web.UrlDispatcher, p: str) -> None:
        """Register the routes under prefix `p`."""
        router.add_get(p + "/users/@me", self.me)
        router.add_get(p + "/users/{user_id}", self.get_user)
        router.add_post(p + "/users/@me/channels", self.create_dm)
        router.add_get(p + "/oauth2/applications/@me", self.application)
        router.add_get(p + "/applications/@me", self.application)
        router.add_get(p + "/gateway", self.gateway)
        router.add_get(p + "/gateway/bot", self.gateway_bot)
        for path in (
            "/applications/{app_id}/commands",
            "/applications/{app_id}/guilds/{g}/commands",
        ):
            router.add_put(p + path, self.put_commands)
            router.add_get(p + path, self.get_commands)
        self._install_channels(router, p)
        router.add_get(p + "/guilds/{guild_id}", self.get_guild)
        router.add_get(p + "/guilds/{guild_id}/channels", self.get_guild_channels)
        router.add_get(p + "/guilds/{guild_id}/roles", self.get_roles)
        router.add_get(p + "/guilds/{guild_id}/members/{user_id}", self.get_member)
        router.add_get("/cdn/{attachment_id}/{filename}", self.cdn)

    def _install_channels(self, router: web.UrlDispatcher, p: str) -> None:
        """Register channel and message routes."""
        c = p + "/channels/{channel_id}"
        router.add_get(c, self.get_channel)
        router.add_post(c + "/typing", self.typing)
        router.add_post(c + "/messages", self.create_message)
        router.add_get(c + "/messages", self.history)
        router.add_get(c + "/messages/{message_id}", self.get_message)
        router.add_get(c + "/thread-members/{user_id}", self.get_thread_member)
        router.add_patch(c + "/messages/{message_id}", self.edit_message)
        router.add_delete(c + "/messages/{message_id}", self.delete_message)
        reaction = c + "/messages/{message_id}/reactions/{emoji}/@me"
        router.add_put(reaction, self.react)
        router.add_delete(reaction, self.unreact)

    # -- identity ---------------------------------------------------------------------------

    async def me(self, request: web.Request) -> web.Response:
        """GET /users/@me."""
        return json_response({**self.fake.bot_user, "email": None, "mfa_enabled": False})

    async def get_user(self, request: web.Request) -> web.Response:
        """GET /users/{id}."""
        user = self.fake._users_by_id.get(request.match_info["user_id"])
        if user is None:
            raise not_found(10013, "Unknown User")
        return json_response(user)

    async def create_dm(self, request: web.Request) -> web.Response:
        """POST /users/@me/channels."""
        body = await parse_body(request)
        user = self.fake._users_by_id.get(str((body.json or {}).get("recipient_id")))
        if user is None:
            raise invalid_form([("recipient_id", "Unknown user")], "POST /users/@me/channels")
        return json_response(self.fake.channels[self.fake.dm_channel(user["username"])])

    async def application(self, request: web.Request) -> web.Response:
        """GET /oauth2/applications/@me."""
        return json_response(self.fake._application_payload())

    async def gateway(self, request: web.Request) -> web.Response:
        """GET /gateway."""
        return json_response({"url": self.fake.gateway_url})

    async def gateway_bot(self, request: web.Request) -> web.Response:
        """GET /gateway/bot (AutoShardedClient)."""
        limit = {"total": 1000, "remaining": 999, "reset_after": 14400000, "max_concurrency": 1}
        return json_response(
            {
                "url": self.fake.gateway_url,
                "shards": self.fake.shard_count,
                "session_start_limit": limit,
            }
        )

    # -- application commands ---------------------------------------------------------------

    def _command_scope(self, request: web.Request) -> str | None:
        """The guild id of a guild-command route (None for global), after checks."""
        if request.match_info["app_id"] != self.fake.app_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = request.match_info.get("g")
        if guild_id is not None and guild_id != self.fake.guild_id:
            raise DiscordError(403, 50001, "Missing Access")
        return guild_id

    async def get_commands(self, request: web.Request) -> web.Response:
        """GET the synced commands of a scope."""
        return json_response(self.fake._commands.get(self._command_scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        """PUT (bulk overwrite) the commands of a scope."""
        scope = self._command_scope(request)
        body = await parse_body(request)
        commands = body.json
        what = f"PUT commands ({scope or 'global'})"
        if not isinstance(commands, list):
            raise invalid_form([("_errors", "Expected a list")], what)
        errors = check_command_set(commands)
        if errors:
            raise invalid_form(errors, what)
        old = {(c["type"], c["name"]): c for c in self.fake._commands.get(scope, [])}
        result = [self._normalize(cmd, old, scope) for cmd in commands]
        self._count_creates(scope, [c for c in result if (c["type"], c["name"]) not in old], what)
        self.fake._commands[scope] = result
        self.fake.sync_count += 1
        self.fake._notify()
        return json_response(result)

    def _count_creates(self, scope: str | None, created: list[JSON], what: str) -> None:
        """Enforce the 200 creates per day per scope limit."""
        key = scope or "global"
        total = self.fake.command_creates.get(key, 0) + len(created)
        if total > MAX_DAILY_COMMAND_CREATES:
            raise DiscordError(
                429,
                30034,
                "Max number of daily application command creates has been reached (200)",
                violation=f"{what}: more than {MAX_DAILY_COMMAND_CREATES} command creates",
            )
        self.fake.command_creates[key] = total

    def _normalize(self, cmd: JSON, old: dict[tuple[int, str], JSON], scope: str | None) -> JSON:
        """Return the command as Discord stores it (ids, version, string permissions)."""
        kind = int(cmd.get("type") or 1)
        perms = cmd.get("default_member_permissions")
        out: JSON = {
            "type": kind,
            "application_id": self.fake.app_id,
            "name": cmd["name"],
            "name_localizations": cmd.get("name_localizations"),
            "description": cmd.get("description") or "",
            "description_localizations": cmd.get("description_localizations"),
            "default_member_permissions": None if perms is None else str(perms),
            "dm_permission": cmd.get("dm_permission", True),
            "nsfw": bool(cmd.get("nsfw")),
            "contexts": cmd.get("contexts"),
            "integration_types": cmd.get("integration_types") or [0],
        }
        if cmd.get("options"):
            out["options"] = copy.deepcopy(cmd["options"])
        if scope is not None:
            out["guild_id"] = scope
        prev = old.get((kind, cmd["name"]))
        same = prev is not None and all(prev.get(k) == out.get(k) for k in COMMAND_COMPARE_KEYS)
        out["id"] = prev["id"] if prev else self.fake._ids.next()
        out["version"] = prev["version"] if prev and same else self.fake._ids.next()
        return out

    # -- channels and messages --------------------------------------------------------------

    def _channel(self, request: web.Request) -> JSON:
        """The channel of the route or 404 Unknown Channel."""
        channel = self.fake.channels.get(request.match_info["channel_id"])
        if channel is None:
            raise not_found(10003, "Unknown Channel")
        return channel

    def _message(self, request: web.Request) -> JSON:
        """The (non-ephemeral) message of the route or 404 Unknown Message."""
        channel = self._channel(request)
        msg = self.fake._by_id.get(request.match_info["message_id"])
        if msg is None or msg["channel_id"] != channel["id"] or msg["flags"] & FLAG_EPHEMERAL:
            raise not_found(10008, "Unknown Message")
        return msg

    async def get_channel(self, request: web.Request) -> web.Response:
        """GET /channels/{id}."""
        return json_response(self._channel(request))

    async def typing(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/typing."""
        self._channel(request)
        return no_content()

    async def create_message(self, request: web.Request) -> web.Response:
        """POST /channels/{id}/messages (JSON or multipart, replies via message_reference)."""
        channel = self._channel(request)
        body = await parse_body(request)
        payload: JSON = body.json or {}
        nonce = payload.get("nonce")
        if payload.get("enforce_nonce") and nonce is not None and str(nonce) in self._nonces:
            return json_response(self._nonces[str(nonce)])
        what = f"POST /channels/{channel['id']}/messages"
        fields = self.builder.fields(
            payload, body.files, base=None, limit=self.fake.attachment_size_limit, what=what
        )
        msg = self.builder.channel_message(channel, fields, payload, what)
        if nonce is not None:
            self._nonces[str(nonce)] = msg
        await self.fake._store(msg)
        return json_response(msg)

    async def history(self, request: web.Request) -> web.Response:
        """GET /channels/{id}/messages with limit/before/after/around (newest first)."""
        channel = self._channel(request)
        msgs = self.fake.messages.get(channel["id"], [])
        q = request.query
        limit = max(1, min(100, int(q.get("limit", "50"))))
        if "around" in q:
            mid = int(q["around"])
            older = [m for m in msgs if int(m["id"]) <= mid][-((limit + 1) // 2) :]
            newer = [m for m in msgs if int(m["id"]) > mid][: limit // 2]
            picked = older + newer
        elif "after" in q:
            picked = [m for m in msgs if int(m["id"]) > int(q["after"])][:limit]
        else:
            before = int(q.get("before", str(1 << 63)))
            picked = [m for m in msgs if int(m["id"]) < before][-limit:]
        views = [self.fake._rest_view(m) for m in reversed(picked)]
        return json_response(views)

    async def get_message(self, request: web.Request) -> web.Response:
        """GET /channels/{c}/messages/{m}."""
        return json_response(self.fake._rest_view(self._message(request)))

    async def edit_message(self, request: web.Request) -> web.Response:
        """PATCH /channels/{c}/messages/{m} (own messages only)."""
        msg = self._message(request)
        body = await parse_body(request)
        what = f"PATCH /channels/{msg['channel_id']}/messages/{msg['id']}"
        if msg["author"]["id"] != self.fake.bot_user["id"]:
            raise DiscordError(
                403,
                50005,
                "Cannot edit a message authored by another user",
                violation=f"{what}: not the bot's message",
            )
        payload: JSON = body.json or {}
        fields = self.builder.fields(
            payload, body.files, base=msg, limit=self.fake.attachment_size_limit, what=what
        )
        if payload.get("flags") is not None:
            fields["flags"] = (msg["flags"] & ~CHANNEL_FLAGS) | (int(payload["flags"]) & CHANNEL_FLAGS)
        await self.fake._edit(msg, fields)
        return json_response(msg)

    async def delete_message(self, request: web.Request) -> web.Response:
        """DELETE /channels/{c}/messages/{m}."""
        await self.fake._delete(self._message(request))
        return no_content()

    async def react(self, request: web.Request) -> web.Response:
        """PUT a reaction as the bot."""
        msg = self._message(request)
        emoji = request.match_info["emoji"]
        reactions = msg.setdefault("reactions", [])
        if not any(r["emoji"]["name"] == emoji for r in reactions):
            reactions.append({"emoji": {"id": None, "name": emoji}, "count": 1, "me": True})
        return no_content()

    async def unreact(self, request: web.Request) -> web.Response:
        """DELETE the bot's reaction."""
        msg = self._message(request)
        emoji = request.match_info["emoji"]
        msg["reactions"] = [r for r in msg.get("reactions", []) if r["emoji"]["name"] != emoji]
        return no_content()

    # -- guilds -----------------------------------------------------------------------------

    def _guild(self, request: web.Request) -> str:
        """The guild id of the route or 404 Unknown Guild."""
        guild_id = request.match_info["guild_id"]
        if guild_id != self.fake.guild_id:
            raise not_found(10004, "Unknown Guild")
        return guild_id

    async def get_guild(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}."""
        self._guild(request)
        guild = self.fake._guild_payload(0)
        for key in ("channels", "members", "threads", "voice_states", "presences"):
            guild.pop(key, None)
        return json_response(guild)

    async def get_guild_channels(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}/channels."""
        guild_id = self._guild(request)
        return json_response([c for c in self.fake.channels.values() if c.get("guild_id") == guild_id])

    async def get_roles(self, request: web.Request) -> web.Response:
        """GET /guilds/{id}/roles."""
        self._guild(request)
        return json_response(list(self.fake.roles.values()))

    async def get_member(self, request: web.Request) -> web.Response:
        """GET /guilds/{g}/members/{u}."""
        self._guild(request)
        member = self.fake._member_payload(request.match_info["user_id"], with_user=True)
        if member is None:
            raise not_found(10007, "Unknown Member")
        return json_response(member)

    async def get_thread_member(self, request: web.Request) -> web.Response:
        """GET /channels/{thread}/thread-members/{u}: a ThreadMember, 404 Unknown Member if not in it
        (a thread's members: its owner and the ids in its fake-only `member_ids`)."""
        thread = self._channel(request)
        if thread.get("type") not in (10, 11, 12):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        user_id = request.match_info["user_id"]
        if user_id != thread.get("owner_id") and user_id not in thread.get("member_ids", []):
            raise not_found(10007, "Unknown Member")
        joined = thread.get("thread_metadata", {}).get("create_timestamp") or iso_now()
        return json_response({"id": thread["id"], "user_id": user_id, "join_timestamp": joined, "flags": 0})

    # -- CDN --------------------------------------------------------------------------------

    async def cdn(self, request: web.Request) -> web.Response:
        """GET /cdn/{id}/{filename}: attachment bytes (404 for unknown or expired URLs)."""
        stored = self.fake._cdn.get(request.match_info["attachment_id"])
        if stored is None or stored[0] != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        expires = request.query.get("ex")
        if expires and self.fake.attachment_url_lifetime is not None and int(expires, 16) < time.time():
            return web.Response(status=404, text="This content is no longer available.")
        _, data, content_type = stored
        return web.Response(body=data, content_type=content_type)
