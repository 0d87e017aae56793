"""Turning the bot's message bodies (JSON or multipart) into stored Discord message objects."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.interactions import InteractionHandle
from tests.fakes.discord.limits import (
    MAX_FILES,
    DiscordError,
    check_files,
    check_message,
    invalid_form,
)
from tests.fakes.discord.payloads import (
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    INTERACTION_COMMAND,
    JSON,
    MSG_CHAT_INPUT,
    MSG_CONTEXT_MENU,
    MSG_DEFAULT,
    MSG_REPLY,
    assign_component_ids,
    make_message,
    normalize_embed,
    resolve_attachment_urls,
)
from tests.fakes.discord.rest import file_index

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

USER_MENTION = re.compile(r"<@!?(\d+)>")
CHANNEL_FLAGS = FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2
INTERACTION_FLAGS = CHANNEL_FLAGS | FLAG_EPHEMERAL

Files = list[tuple[str, str, bytes]]


class MessageBuilder:
    """Validates message bodies and builds the message objects Discord would store."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def fields(
        self,
        payload: JSON,
        files: Files,
        *,
        base: JSON | None,
        limit: int,
        what: str,
        prefix: str = "",
    ) -> JSON:
        """Validate a create (base=None) or edit body and return the message fields it sets."""
        errors = check_message(payload, prefix)
        if errors:
            raise invalid_form(errors, what)
        check_files(files, limit, what)
        existing = (base or {}).get("attachments") or []
        attachments = self._attachments(payload, files, existing, what, prefix)
        out: JSON = {}
        if "content" in payload:
            out["content"] = payload["content"] or ""
        if "embeds" in payload:
            out["embeds"] = [normalize_embed(e) for e in payload["embeds"] or []]
        if "components" in payload:
            out["components"] = assign_component_ids(payload["components"] or [])
        if attachments is not None:
            out["attachments"] = attachments
        if "tts" in payload:
            out["tts"] = bool(payload["tts"])
        final = attachments if attachments is not None else existing
        for key in ("embeds", "components"):
            if key in out:
                out[key] = resolve_attachment_urls(out[key], final)
        if base is None:
            self._require_not_empty(out, payload, what)
        if "content" in out:
            out["mentions"] = self.mentions(out["content"], payload.get("allowed_mentions"))
        return out

    def _require_not_empty(self, fields: JSON, payload: JSON, what: str) -> None:
        """Discord refuses to create a message with nothing in it."""
        if any(fields.get(k) for k in ("content", "embeds", "components", "attachments")):
            return
        if payload.get("sticker_ids") or payload.get("poll"):
            return
        raise DiscordError(400, 50006, "Cannot send an empty message", violation=f"{what}: empty message")

    def _attachments(
        self, payload: JSON, files: Files, existing: list[JSON], what: str, prefix: str
    ) -> list[JSON] | None:
        """Keep listed existing attachments and store new `files[n]` uploads."""
        uploads = {file_index(name): (fn, data) for name, fn, data in files}
        entries = payload.get("attachments")
        if entries is None:
            if not files:
                return None
            entries = [{"id": a["id"]} for a in existing]
        kept = {str(a["id"]): a for a in existing}
        out: list[JSON] = []
        used: set[int] = set()
        for i, entry in enumerate(entries):
            att_id = entry.get("id")
            if str(att_id) in kept:
                out.append(kept[str(att_id)])
                continue
            index = _as_index(att_id)
            if index is None or index not in uploads:
                raise invalid_form([(f"{prefix}attachments.{i}.id", "Unknown attachment")], what)
            used.add(index)
            out.append(self._upload(entry, *uploads[index]))
        for index, (filename, data) in uploads.items():
            if index not in used:
                out.append(self.fake._cdn_put(data, filename, None))
        if len(out) > MAX_FILES:
            raise invalid_form([(f"{prefix}attachments", f"Must be {MAX_FILES} or fewer in length.")], what)
        return out

    def _upload(self, entry: JSON, part_filename: str, data: bytes) -> JSON:
        """Store one new upload, honouring the attachment entry's filename/description."""
        att = self.fake._cdn_put(data, entry.get("filename") or part_filename, None)
        if entry.get("description"):
            att["description"] = entry["description"]
        return att

    def mentions(self, content: str, allowed: JSON | None) -> list[JSON]:
        """Users mentioned in content that allowed_mentions lets through."""
        ids = dict.fromkeys(USER_MENTION.findall(content or ""))
        if allowed is not None and "users" not in (allowed.get("parse") or []):
            permitted = {str(u) for u in allowed.get("users") or []}
            ids = {i: None for i in ids if i in permitted}
        return [self.fake._users_by_id[i] for i in ids if i in self.fake._users_by_id]

    def channel_message(self, channel: JSON, fields: JSON, payload: JSON, what: str) -> JSON:
        """Build a message posted with the bot token (a reply when message_reference is set)."""
        guild_id = channel.get("guild_id")
        extra: JSON = {"flags": int(payload.get("flags") or 0) & CHANNEL_FLAGS}
        if payload.get("nonce") is not None:
            extra["nonce"] = payload["nonce"]
        ref = payload.get("message_reference")
        if ref and int(ref.get("type") or 0) == 0:
            extra.update(self._reply_fields(ref, channel, payload, what))
        msg = make_message(self.fake._ids.next(), channel["id"], self.fake.bot_user, guild_id)
        msg.update(fields)
        msg.update(extra)
        return msg

    def _reply_fields(self, ref: JSON, channel: JSON, payload: JSON, what: str) -> JSON:
        """message_reference / referenced_message / reply ping for a reply."""
        target = self.fake._by_id.get(str(ref.get("message_id")))
        if target is None or target["flags"] & FLAG_EPHEMERAL or target["channel_id"] != channel["id"]:
            if ref.get("fail_if_not_exists", True):
                raise invalid_form([("message_reference", "Unknown message")], what)
            return {}
        out: JSON = {
            "type": MSG_REPLY,
            "message_reference": {
                "type": 0,
                "message_id": target["id"],
                "channel_id": target["channel_id"],
                "guild_id": channel.get("guild_id"),
            },
            "referenced_message": _snapshot(target),
        }
        allowed = payload.get("allowed_mentions") or {}
        if allowed.get("replied_user", "allowed_mentions" not in payload):
            out["mentions"] = [*self.mentions(payload.get("content") or "", allowed or None)]
            out["mentions"].append(target["author"])
        return out

    def interaction_message(
        self, inter: InteractionHandle, fields: JSON, flags: int, *, followup: bool = False
    ) -> JSON:
        """Build a message created through an interaction (callback or followup)."""
        p = inter.payload
        data = p.get("data") or {}
        msg = make_message(
            self.fake._ids.next(),
            p["channel_id"],
            self.fake.bot_user,
            p.get("guild_id"),
            type=_interaction_message_type(p),
            webhook_id=self.fake.app_id,
            application_id=self.fake.app_id,
            interaction_metadata=self.metadata(inter, followup=followup),
            flags=flags & INTERACTION_FLAGS,
        )
        if p["type"] == INTERACTION_COMMAND:
            user = _invoker(p)
            msg["interaction"] = {"id": inter.id, "type": 2, "name": data.get("name"), "user": user}
        source = p.get("message")
        if source is not None and msg["type"] == MSG_REPLY:
            msg["message_reference"] = {
                "type": 0,
                "message_id": source["id"],
                "channel_id": source["channel_id"],
                "guild_id": p.get("guild_id"),
            }
        msg.update(fields)
        return msg

    def metadata(self, inter: InteractionHandle, *, followup: bool = False) -> JSON:
        """The message's interaction_metadata."""
        p = inter.payload
        data = p.get("data") or {}
        meta: JSON = {
            "id": inter.id,
            "type": inter.type,
            "user": _invoker(p),
            "authorizing_integration_owners": p.get("authorizing_integration_owners", {}),
        }
        if data.get("type") == 3 and data.get("target_id"):
            meta["target_message_id"] = data["target_id"]
        if data.get("type") == 2 and data.get("target_id"):
            meta["target_user"] = data["resolved"]["users"][data["target_id"]]
        if p.get("message"):
            meta["interacted_message_id"] = p["message"]["id"]
        if followup and inter.original_id:
            meta["original_response_message_id"] = inter.original_id
        return meta


def _as_index(value: Any) -> int | None:
    """An attachment entry id that names a new upload (`files[n]`)."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _snapshot(msg: JSON) -> JSON:
    """A referenced_message copy (Discord nests only one level)."""
    out = dict(msg)
    out.pop("referenced_message", None)
    return out


def _invoker(payload: JSON) -> JSON:
    """The user who triggered an interaction."""
    user: JSON = payload["member"]["user"] if "member" in payload else payload["user"]
    return user


def _interaction_message_type(payload: JSON) -> int:
    """Message type of an interaction response: 20 slash, 23 context menu, 19 component reply."""
    if payload["type"] == INTERACTION_COMMAND:
        kind = (payload.get("data") or {}).get("type", 1)
        return MSG_CHAT_INPUT if kind == 1 else MSG_CONTEXT_MENU
    return MSG_REPLY if payload.get("message") else MSG_DEFAULT
