"""The fake's world: bot, guild, channels, roles, users, permissions and gateway payloads."""

from __future__ import annotations

import copy
import hashlib
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.payloads import (
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    INTENT_GUILD_MEMBERS,
    JSON,
    PERM_ADMINISTRATOR,
    PERM_ALL,
    PERM_MANAGE_GUILD,
    PERM_MANAGE_MESSAGES,
    Snowflakes,
    iso_now,
    make_dm_channel,
    make_member,
    make_role,
    make_text_channel,
    make_user,
)

if TYPE_CHECKING:
    from tests.fakes.discord.gateway import GatewayConnection

MIB = 1024 * 1024
# Application flags: GATEWAY_*_LIMITED, as for a bot in fewer than 100 servers.
APP_FLAG_FOR_INTENT = {1 << 1: 1 << 15, 1 << 8: 1 << 13, 1 << 15: 1 << 19}


class WorldMixin:
    """Guild state of FakeDiscord (its attributes are created in FakeDiscord.__init__)."""

    _ids: Snowflakes
    users: dict[str, JSON]
    roles: dict[str, JSON]
    channels: dict[str, JSON]
    attachment_size_limit: int
    privileged_intents: int
    _users_by_id: dict[str, JSON]
    _member_roles: dict[str, list[str]]
    _dm_channels: dict[str, str]

    if TYPE_CHECKING:

        @property
        def gateway_url(self) -> str: ...

        def _spawn_dispatch(self, event: str, data: JSON) -> None: ...

    # -- world ------------------------------------------------------------------------------

    def _build_world(self, bot_name: str) -> None:
        """Create the bot, the guild, its channels, roles and the default users."""
        self.app_id = self._ids.next()
        self.bot_user = make_user(self.app_id, bot_name, bot=True)
        self._users_by_id[self.app_id] = self.bot_user
        self.guild_id = self._ids.next()
        self.owner_id = self._ids.next()
        self._joined_at = iso_now()
        #: The server's language (Community servers set it): what the bot's own posts are written in.
        self.preferred_locale = "en-US"
        self.roles[self.guild_id] = make_role(self.guild_id, "@everyone", EVERYONE_PERMISSIONS, 0)
        bot_role = self.add_role(bot_name, permissions=str(BOT_PERMISSIONS))
        self.roles[bot_role].update(managed=True, tags={"bot_id": self.app_id})
        self._member_roles[self.app_id] = [bot_role]
        self.channel_id = self._add_text_channel("general", nsfw=False)
        self.nsfw_channel_id = self._add_text_channel("nsfw", nsfw=True)
        admin_role = self.add_role("admin", permissions=str(PERM_MANAGE_GUILD | PERM_MANAGE_MESSAGES))
        self.add_user("alice")
        self.add_user("admin", roles=[admin_role])

    def _add_text_channel(self, name: str, *, nsfw: bool) -> str:
        """Add a guild text channel."""
        channel_id = self._ids.next()
        position = sum(1 for c in self.channels.values() if c.get("guild_id"))
        self.channels[channel_id] = make_text_channel(channel_id, self.guild_id, name, position, nsfw)
        return channel_id

    def add_role(self, name: str, *, permissions: str | int = "0") -> str:
        """Add a guild role; dispatched as GUILD_ROLE_CREATE when a bot is connected."""
        role_id = self._ids.next()
        self.roles[role_id] = make_role(role_id, name, int(permissions), len(self.roles))
        self._spawn_dispatch("GUILD_ROLE_CREATE", {"guild_id": self.guild_id, "role": self.roles[role_id]})
        return role_id

    def set_preferred_locale(self, locale: str) -> None:
        """Change the server's language; dispatched as GUILD_UPDATE when a bot is connected."""
        self.preferred_locale = locale
        guild = {
            k: v for k, v in self._guild_payload(0).items() if k not in ("members", "channels", "threads")
        }
        self._spawn_dispatch("GUILD_UPDATE", guild)

    def add_user(
        self,
        name: str,
        *,
        roles: tuple[str, ...] | list[str] = (),
        permissions: str | int | None = None,
    ) -> JSON:
        """Add a guild member (roles by id or name; `permissions` adds a personal role)."""
        if name in self.users:
            raise ValueError(f"user {name!r} already exists")
        user = make_user(self._ids.next(), name)
        role_ids = [self._role_id(r) for r in roles]
        if permissions is not None:
            role_ids.append(self.add_role(f"{name}-permissions", permissions=permissions))
        self.users[name] = user
        self._users_by_id[user["id"]] = user
        self._member_roles[user["id"]] = role_ids
        member = self._member_payload(user["id"], with_user=True) or {}
        self._spawn_dispatch("GUILD_MEMBER_ADD", {"guild_id": self.guild_id, **member})
        return user

    def dm_channel(self, user: str | JSON) -> str:
        """The id of the DM channel between the bot and a user (created on first use)."""
        target = self._user_for(user)
        channel_id = self._dm_channels.get(target["id"])
        if channel_id is None:
            channel_id = self._ids.next()
            self.channels[channel_id] = make_dm_channel(channel_id, target)
            self._dm_channels[target["id"]] = channel_id
        return channel_id

    def _role_id(self, role: str) -> str:
        """A role id from an id or a name."""
        found = self._role_for_option(role)
        if found is None:
            raise ValueError(f"unknown role {role!r}")
        return str(found["id"])

    def _role_for_option(self, value: Any) -> JSON | None:
        """A role by id or name, or None."""
        key = str(value.get("id")) if isinstance(value, dict) else str(value)
        if key in self.roles:
            return self.roles[key]
        return next((r for r in self.roles.values() if r["name"] == key), None)

    def _channel_for_option(self, value: Any) -> JSON | None:
        """A resolved channel (with permissions) by id or name."""
        key = str(value.get("id")) if isinstance(value, dict) else str(value)
        channel = self.channels.get(key) or next(
            (c for c in self.channels.values() if c.get("name") == key), None
        )
        if channel is None:
            return None
        return {**channel, "permissions": str(self._permissions_of(self.app_id))}

    def _user_for(self, value: str | JSON) -> JSON:
        """A user by name, id or user dict."""
        if isinstance(value, dict):
            return self._users_by_id.get(str(value["id"]), value)
        if value in self.users:
            return self.users[value]
        if value in self._users_by_id:
            return self._users_by_id[value]
        raise ValueError(f"unknown user {value!r}; known: {sorted(self.users)}")

    def _permissions_of(self, user_id: str) -> int:
        """Guild permissions of a member, from @everyone and their roles."""
        if user_id == self.owner_id:
            return PERM_ALL
        perms = int(self.roles[self.guild_id]["permissions"])
        for role_id in self._member_roles.get(user_id, []):
            perms |= int(self.roles[role_id]["permissions"])
        return PERM_ALL if perms & PERM_ADMINISTRATOR else perms

    def _member_payload(self, user_id: str, *, with_user: bool, perms: bool = False) -> JSON | None:
        """A member object for a guild member, or None."""
        if user_id not in self._member_roles:
            return None
        user = self._users_by_id[user_id] if with_user else None
        permissions = self._permissions_of(user_id) if perms else None
        return make_member(user, self._member_roles[user_id], self._joined_at, permissions=permissions)

    def _app_flags(self) -> int:
        """Application flags matching the privileged intents enabled in the "portal"."""
        return sum(flag for intent, flag in APP_FLAG_FOR_INTENT.items() if self.privileged_intents & intent)

    def _application_payload(self) -> JSON:
        """GET /oauth2/applications/@me."""
        owner = make_user(self.owner_id, "owner")
        return {
            "id": self.app_id,
            "name": self.bot_user["username"],
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(self.app_id.encode()).hexdigest(),
            "flags": self._app_flags(),
            "owner": owner,
            "team": None,
            "bot": self.bot_user,
            "hook": True,
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "integration_types_config": {"0": {}},
            "approximate_guild_count": 1,
        }

    def _ready_payload(self, conn: GatewayConnection) -> JSON:
        """READY for one connection."""
        guilds = [{"id": self.guild_id, "unavailable": True}] if conn.owns(self.guild_id) else []
        return {
            "v": 10,
            "user": self.bot_user,
            "guilds": guilds,
            "session_id": conn.session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": self.app_id, "flags": self._app_flags()},
            "shard": list(conn.shard),
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "user_settings": {},
            "session_type": "normal",
            "_trace": ['["fake-discord",{"micros":0}]'],
        }

    def _guild_payload(self, intents: int) -> JSON:
        """GUILD_CREATE; all members only with the GUILD_MEMBERS intent (as Discord does)."""
        everyone = intents & INTENT_GUILD_MEMBERS
        ids = [uid for uid in self._member_roles if everyone or uid == self.app_id]
        members = [self._member_payload(uid, with_user=True) for uid in ids]
        channels = [c for c in self.channels.values() if c.get("guild_id") == self.guild_id]
        tier = (
            0
            if self.attachment_size_limit <= 10 * MIB
            else 2
            if self.attachment_size_limit <= 50 * MIB
            else 3
        )
        return {
            "id": self.guild_id,
            "name": "Test Guild",
            "icon": None,
            "splash": None,
            "banner": None,
            "description": None,
            "owner_id": self.owner_id,
            "unavailable": False,
            "member_count": len(self._member_roles),
            "large": False,
            "joined_at": self._joined_at,
            "features": [],
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "premium_tier": tier,
            "premium_subscription_count": 0,
            "preferred_locale": self.preferred_locale,
            "system_channel_id": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "nsfw_level": 0,
            "roles": list(self.roles.values()),
            "emojis": [],
            "stickers": [],
            "channels": copy.deepcopy(channels),
            "threads": [],
            "members": members,
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }
