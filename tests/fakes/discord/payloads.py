"""Discord object builders, ids and constants shared by the fake Discord server."""

from __future__ import annotations

import copy
import io
import mimetypes
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from PIL import Image

JSON = dict[str, Any]

DISCORD_EPOCH_MS = 1420070400000

# Gateway intents (https://discord.com/developers/docs/events/gateway#gateway-intents).
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT

# Permission bits.
PERM_ADMINISTRATOR = 1 << 3
PERM_MANAGE_GUILD = 1 << 5
PERM_MANAGE_MESSAGES = 1 << 13
PERM_ALL = (1 << 53) - 1
EVERYONE_PERMISSIONS = 2248473465835073
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | PERM_MANAGE_MESSAGES

# Message flags.
FLAG_SUPPRESS_EMBEDS = 1 << 2
FLAG_EPHEMERAL = 1 << 6
FLAG_LOADING = 1 << 7
FLAG_SUPPRESS_NOTIFICATIONS = 1 << 12
FLAG_COMPONENTS_V2 = 1 << 15

# Message types.
MSG_DEFAULT = 0
MSG_REPLY = 19
MSG_CHAT_INPUT = 20
MSG_CONTEXT_MENU = 23

# Interaction types.
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5

# Application command option types.
OPT_SUB_COMMAND = 1
OPT_SUB_COMMAND_GROUP = 2
OPT_STRING = 3
OPT_INTEGER = 4
OPT_BOOLEAN = 5
OPT_USER = 6
OPT_CHANNEL = 7
OPT_ROLE = 8
OPT_MENTIONABLE = 9
OPT_NUMBER = 10
OPT_ATTACHMENT = 11


class Snowflakes:
    """Generates real, strictly increasing, time-based snowflake ids as strings."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> str:
        """Return a fresh snowflake for the current millisecond."""
        ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
        value = (ms << 22) | (1 << 17)
        self._last = max(value, self._last + 1)
        return str(self._last)


def snowflake_time(snowflake: str | int) -> datetime:
    """Return the creation time encoded in a snowflake."""
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC)


def iso_now() -> str:
    """Return the current UTC time in Discord's ISO-8601 format."""
    return datetime.now(UTC).isoformat()


def make_user(user_id: str, name: str, *, bot: bool = False) -> JSON:
    """Build a user object with every key discord.py and the spec require."""
    user: JSON = {
        "id": user_id,
        "username": name,
        "discriminator": "0",
        "global_name": None if bot else name.title(),
        "avatar": None,
        "flags": 0,
        "public_flags": 0,
        "primary_guild": None,
        "banner": None,
        "accent_color": None,
        "avatar_decoration_data": None,
        "collectibles": None,
    }
    if bot:
        user.update(bot=True, mfa_enabled=False, locale="en-US", verified=True)
    return user


def make_role(role_id: str, name: str, permissions: int, position: int, **extra: Any) -> JSON:
    """Build a role object."""
    role: JSON = {
        "id": role_id,
        "name": name,
        "permissions": str(permissions),
        "position": position,
        "color": 0,
        "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
        "hoist": False,
        "icon": None,
        "unicode_emoji": None,
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }
    role.update(extra)
    return role


def make_member(
    user: JSON | None, roles: list[str], joined_at: str, *, permissions: int | None = None
) -> JSON:
    """Build a guild member object (without `user` when user is None, as in MESSAGE_CREATE)."""
    member: JSON = {
        "roles": list(roles),
        "joined_at": joined_at,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "pending": False,
        "nick": None,
        "avatar": None,
        "banner": None,
        "premium_since": None,
        "communication_disabled_until": None,
    }
    if user is not None:
        member["user"] = user
    if permissions is not None:
        member["permissions"] = str(permissions)
    return member


def make_text_channel(channel_id: str, guild_id: str, name: str, position: int, nsfw: bool) -> JSON:
    """Build a guild text channel object."""
    return {
        "id": channel_id,
        "type": 0,
        "guild_id": guild_id,
        "name": name,
        "position": position,
        "permission_overwrites": [],
        "parent_id": None,
        "nsfw": nsfw,
        "flags": 0,
        "rate_limit_per_user": 0,
        "topic": None,
        "last_message_id": None,
    }


def make_dm_channel(channel_id: str, recipient: JSON) -> JSON:
    """Build a DM channel object."""
    return {
        "id": channel_id,
        "type": 1,
        "flags": 0,
        "recipients": [recipient],
        "last_message_id": None,
    }


def sniff_image(data: bytes) -> tuple[str | None, int | None, int | None]:
    """Return (content_type, width, height) when the bytes are an image Pillow can read."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            fmt = img.format
            width, height = img.size
    except Exception:
        return None, None, None
    mime = Image.MIME.get(fmt or "", None)
    return mime, width, height


def make_attachment(
    attachment_id: str, filename: str, data: bytes, url: str, content_type: str | None
) -> JSON:
    """Build an attachment object, reading image dimensions with Pillow."""
    sniffed, width, height = sniff_image(data)
    guessed = mimetypes.guess_type(filename)[0]
    att: JSON = {
        "id": attachment_id,
        "filename": filename,
        "size": len(data),
        "url": url,
        "proxy_url": url,
        "content_type": content_type or sniffed or guessed or "application/octet-stream",
    }
    if width is not None:
        att.update(width=width, height=height)
    return att


def make_message(message_id: str, channel_id: str, author: JSON, guild_id: str | None, **fields: Any) -> JSON:
    """Build a message object with every key discord.py indexes directly."""
    msg: JSON = {
        "id": message_id,
        "channel_id": channel_id,
        "type": MSG_DEFAULT,
        "content": "",
        "author": author,
        "attachments": [],
        "embeds": [],
        "components": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": False,
        "timestamp": snowflake_time(message_id).isoformat(),
        "edited_timestamp": None,
        "flags": 0,
    }
    if guild_id is not None:
        msg["guild_id"] = guild_id
    msg.update(fields)
    return msg


def blank_content(msg: JSON) -> JSON:
    """Return a copy with the fields hidden from apps lacking the MESSAGE_CONTENT intent."""
    out = copy.deepcopy(msg)
    out.update(content="", embeds=[], attachments=[], components=[])
    out.pop("poll", None)
    return out


def walk_components(components: list[JSON]) -> Iterator[JSON]:
    """Yield every component in a component tree, depth first."""
    for comp in components:
        yield comp
        yield from walk_components(comp.get("components") or [])
        for key in ("accessory", "component"):
            child = comp.get(key)
            if isinstance(child, dict):
                yield from walk_components([child])


def assign_component_ids(components: list[JSON]) -> list[JSON]:
    """Return a copy of the tree where every component has a numeric `id`, as Discord echoes."""
    out = copy.deepcopy(components)
    used = {c["id"] for c in walk_components(out) if isinstance(c.get("id"), int)}
    counter = 0
    for comp in walk_components(out):
        if isinstance(comp.get("id"), int):
            continue
        counter += 1
        while counter in used:
            counter += 1
        comp["id"] = counter
    return out


def find_component(components: list[JSON], custom_id: str) -> JSON | None:
    """Return the component with this custom_id, if any."""
    for comp in walk_components(components):
        if comp.get("custom_id") == custom_id:
            return comp
    return None


def resolve_attachment_urls(value: Any, attachments: list[JSON]) -> Any:
    """Replace `attachment://name` URLs in embeds/components by the uploaded attachment URLs."""
    if isinstance(value, list):
        return [resolve_attachment_urls(v, attachments) for v in value]
    if not isinstance(value, dict):
        return value
    out = {k: resolve_attachment_urls(v, attachments) for k, v in value.items()}
    url = out.get("url")
    if isinstance(url, str) and url.startswith("attachment://"):
        name = url.removeprefix("attachment://")
        match = next((a for a in attachments if a["filename"] == name), None)
        if match is not None:
            out.update(url=match["url"], proxy_url=match["proxy_url"])
            for key in ("width", "height", "content_type"):
                if key in match:
                    out[key] = match[key]
    return out


def normalize_embed(embed: JSON) -> JSON:
    """Return the embed as Discord echoes it (with a type)."""
    out = copy.deepcopy(embed)
    out.setdefault("type", "rich")
    return out
