"""User actions of FakeDiscord: slash commands, context menus, components, modals, messages."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, cast

from tests.fakes.discord.interactions import (
    CommandUnavailable,
    InteractionHandle,
    build_command_data,
    check_available,
    new_token,
)
from tests.fakes.discord.payloads import (
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    INTERACTION_MODAL_SUBMIT,
    JSON,
    MSG_REPLY,
    PERM_ALL,
    Snowflakes,
    find_component,
    make_message,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord
    from tests.fakes.discord.gateway import Gateway

SELECT_TYPES = {3, 5, 6, 7, 8}
#: A modal's file upload (inside a label): what it submits is attachment ids.
FILE_UPLOAD = 19


class ActionsMixin:
    """What a user does in the Discord client, turned into gateway events for the bot."""

    _ids: Snowflakes
    app_id: str
    bot_user: JSON
    channel_id: str
    channels: dict[str, JSON]
    attachment_size_limit: int
    preferred_locale: str
    gateway: Gateway
    _commands: dict[str | None, list[JSON]]
    _modals: dict[str, JSON]
    _interactions: dict[str, InteractionHandle]
    _by_token: dict[str, InteractionHandle]

    if TYPE_CHECKING:

        def _user_for(self, value: str | JSON) -> JSON: ...
        def _permissions_of(self, user_id: str) -> int: ...
        def _member_payload(self, user_id: str, *, with_user: bool, perms: bool = False) -> JSON | None: ...
        def _current(self, message: JSON | str) -> JSON: ...
        async def _store(self, msg: JSON) -> None: ...
        def upload_attachment(self, data: bytes, filename: str, content_type: str | None = None) -> JSON: ...

    @property
    def _fake(self) -> FakeDiscord:
        """This object as the FakeDiscord it is mixed into."""
        return cast("FakeDiscord", self)

    # -- user actions: interactions ---------------------------------------------------------

    def _channel(self, channel_id: str | None) -> JSON:
        """A channel by id (default "general")."""
        channel = self.channels.get(channel_id or self.channel_id)
        if channel is None:
            raise ValueError(f"unknown channel {channel_id}")
        return channel

    def _find_command(self, name: str, kind: int, guild_id: str | None) -> JSON | None:
        """A synced command visible in this guild (guild commands first)."""
        scopes = [guild_id, None] if guild_id else [None]
        for scope in scopes:
            for cmd in self._commands.get(scope, []):
                if cmd["name"] == name and cmd["type"] == kind:
                    return cmd
        return None

    def _check_command(self, cmd: JSON | None, author: JSON, channel: JSON, force: bool) -> None:
        """Refuse commands a real client would not offer (unless force)."""
        if cmd is None or force:
            return
        perms = self._permissions_of(author["id"]) if channel.get("guild_id") else PERM_ALL
        check_available(cmd, perms, channel, 0 if channel.get("guild_id") else 1)

    async def send_slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        user: str | JSON = "alice",
        channel_id: str | None = None,
        locale: str = "en-US",
        force: bool = False,
        user_install: bool = False,
    ) -> InteractionHandle:
        """Dispatch a chat-input command ("group sub" for sub-commands), typed from the sync.

        `user_install`: the member added the app to their account and uses it where the app itself is
        not installed (authorizing_integration_owners names only the user)."""
        channel, author = self._channel(channel_id), self._user_for(user)
        cmd = self._find_command(name.split()[0], 1, channel.get("guild_id"))
        self._check_command(cmd, author, channel, force)
        data = build_command_data(self._fake, name, options or {}, cmd, force=force)
        owners = {"1": author["id"]} if user_install else None
        return await self._dispatch_interaction(
            INTERACTION_COMMAND, data, author, channel, locale=locale, owners=owners
        )

    async def send_autocomplete(
        self,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        user: str | JSON = "alice",
        channel_id: str | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Dispatch an autocomplete interaction with `focused` as the option being typed."""
        channel, author = self._channel(channel_id), self._user_for(user)
        cmd = self._find_command(name.split()[0], 1, channel.get("guild_id"))
        self._check_command(cmd, author, channel, False)
        data = build_command_data(self._fake, name, options, cmd, focused=focused)
        return await self._dispatch_interaction(
            INTERACTION_AUTOCOMPLETE, data, author, channel, locale=locale
        )

    async def send_message_command(
        self,
        name: str,
        target_message: JSON | str,
        *,
        user: str | JSON = "alice",
        force: bool = False,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Dispatch a message context-menu command on a message (content always visible)."""
        target = self._current(target_message)
        channel, author = self._channel(target["channel_id"]), self._user_for(user)
        cmd = self._find_command(name, 3, channel.get("guild_id"))
        self._check_command(cmd, author, channel, force)
        data = self._context_data(name, 3, cmd, target["id"], {"messages": {target["id"]: target}})
        return await self._dispatch_interaction(INTERACTION_COMMAND, data, author, channel, locale=locale)

    async def send_user_command(
        self, name: str, target_user: str | JSON, *, user: str | JSON = "alice", force: bool = False
    ) -> InteractionHandle:
        """Dispatch a user context-menu command."""
        channel, author, target = (
            self._channel(None),
            self._user_for(user),
            self._user_for(target_user),
        )
        cmd = self._find_command(name, 2, channel.get("guild_id"))
        self._check_command(cmd, author, channel, force)
        resolved: JSON = {"users": {target["id"]: target}}
        member = self._member_payload(target["id"], with_user=False, perms=True)
        if member is not None:
            resolved["members"] = {target["id"]: member}
        data = self._context_data(name, 2, cmd, target["id"], resolved)
        return await self._dispatch_interaction(INTERACTION_COMMAND, data, author, channel)

    def _context_data(self, name: str, kind: int, cmd: JSON | None, target_id: str, resolved: JSON) -> JSON:
        """`data` of a context-menu command."""
        data: JSON = {"id": cmd["id"] if cmd else self._ids.next(), "name": name, "type": kind}
        data.update(target_id=target_id, resolved=copy.deepcopy(resolved))
        if cmd and cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        return data

    async def send_component(
        self,
        message: JSON | str,
        custom_id: str,
        *,
        user: str | JSON = "alice",
        values: list[str] | None = None,
        force: bool = False,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Click a button / choose in a select on a message (the full message is embedded)."""
        msg = self._current(message)
        comp = find_component(msg.get("components") or [], custom_id)
        if comp is None and not force:
            raise ValueError(f"no component {custom_id!r} on message {msg['id']}")
        if comp is not None and comp.get("disabled") and not force:
            raise CommandUnavailable(f"component {custom_id!r} is disabled")
        data: JSON = {"custom_id": custom_id, "component_type": (comp or {}).get("type", 2)}
        if data["component_type"] in SELECT_TYPES:
            data["values"] = list(values or [])
        channel, author = self._channel(msg["channel_id"]), self._user_for(user)
        return await self._dispatch_interaction(
            INTERACTION_COMPONENT, data, author, channel, message=copy.deepcopy(msg), locale=locale
        )

    async def send_modal_submit(
        self,
        custom_id: str,
        values: dict[str, Any],
        message: JSON | str | None = None,
        *,
        user: str | JSON = "alice",
        channel_id: str | None = None,
        locale: str = "en-US",
    ) -> InteractionHandle:
        """Submit a modal; mirrors the structure of the modal the bot last sent with custom_id."""
        uploads: dict[str, JSON] = {}
        components = self._modal_components(self._modals.get(custom_id), values, uploads)
        data: JSON = {"custom_id": custom_id, "components": components}
        if uploads:  # a file upload's values are attachment ids, resolved like command options
            data["resolved"] = {"attachments": uploads}
        msg = self._current(message) if message is not None else None
        channel = self._channel(msg["channel_id"] if msg else channel_id)
        extra = copy.deepcopy(msg) if msg else None
        return await self._dispatch_interaction(
            INTERACTION_MODAL_SUBMIT, data, self._user_for(user), channel, message=extra, locale=locale
        )

    def _modal_components(
        self, modal: JSON | None, values: dict[str, Any], uploads: dict[str, JSON] | None = None
    ) -> list[JSON]:
        """Submitted components for a modal (action rows of text inputs if the modal is unknown).

        A file upload's value is a list of files, each `(filename, bytes)` or an attachment object:
        they are put on the CDN and added to `uploads` (the submission's resolved attachments).
        """
        uploads = {} if uploads is None else uploads
        if modal is None:
            return [
                {"type": 1, "components": [{"type": 4, "custom_id": k, "value": str(v)}]}
                for k, v in values.items()
            ]
        known = {c["custom_id"] for c in _modal_inputs(modal)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"modal {modal['custom_id']!r} has no inputs {sorted(unknown)}")
        out = []
        for comp in modal.get("components") or []:
            if comp["type"] == 1:
                inner = [_submitted(c, values) for c in comp.get("components") or [] if c.get("custom_id")]
                out.append({"type": 1, "components": inner})
            elif comp["type"] == 18 and comp.get("component"):
                inner = comp["component"]
                if inner.get("type") == FILE_UPLOAD:
                    submitted = self._uploaded(inner, values.get(str(inner.get("custom_id")), []), uploads)
                else:
                    submitted = _submitted(inner, values)
                out.append({"type": 18, "id": comp.get("id"), "component": submitted})
        return out

    def _uploaded(self, comp: JSON, files: list[Any], uploads: dict[str, JSON]) -> JSON:
        """A file upload as submitted: its files on the CDN, within the component's min and max."""
        low = comp.get("min_values")
        high = comp.get("max_values")
        low, high = (1 if low is None else low), (1 if high is None else high)
        if comp.get("required", True) is False:
            low = 0
        if not low <= len(files) <= high:
            raise ValueError(f"file upload {comp['custom_id']!r} takes {low}-{high} files, not {len(files)}")
        stored = [self.upload_attachment(f[1], f[0]) if isinstance(f, tuple) else f for f in files]
        for attachment in stored:
            uploads[str(attachment["id"])] = copy.deepcopy(attachment)
        values = [str(a["id"]) for a in stored]
        return {"type": FILE_UPLOAD, "id": comp.get("id"), "custom_id": comp["custom_id"], "values": values}

    async def _dispatch_interaction(
        self,
        kind: int,
        data: JSON,
        author: JSON,
        channel: JSON,
        *,
        message: JSON | None = None,
        locale: str = "en-US",
        owners: JSON | None = None,
    ) -> InteractionHandle:
        """Build INTERACTION_CREATE, register a handle and send it to the owning shard(s)."""
        payload = self._interaction_payload(kind, data, author, channel, locale)
        if owners is not None:
            payload["authorizing_integration_owners"] = owners
        if message is not None:
            payload["message"] = message
        handle = InteractionHandle(self._fake, payload)
        self._interactions[handle.id] = handle
        self._by_token[handle.token] = handle
        sent = await self.gateway.dispatch("INTERACTION_CREATE", payload, guild_id=channel.get("guild_id"))
        if not sent:
            raise RuntimeError("no ready gateway connection received the interaction")
        handle.receivers = len(sent)
        return handle

    def _interaction_payload(self, kind: int, data: JSON, author: JSON, channel: JSON, locale: str) -> JSON:
        """The INTERACTION_CREATE d-payload with every key discord.py 2.7.1 requires."""
        guild_id = channel.get("guild_id")
        payload: JSON = {
            "id": self._ids.next(),
            "application_id": self.app_id,
            "type": kind,
            "data": data,
            "token": new_token(),
            "version": 1,
            "channel_id": channel["id"],
            "locale": locale,
            "app_permissions": str(self._permissions_of(self.app_id)),
            "entitlements": [],
            "attachment_size_limit": self.attachment_size_limit,
            "authorizing_integration_owners": {"0": guild_id or "0"},
            "context": 0 if guild_id else 1,
        }
        if guild_id is None:
            payload.update(user=author, channel=copy.deepcopy(channel))
            return payload
        perms = self._permissions_of(author["id"])
        payload.update(
            guild_id=guild_id,
            guild={"id": guild_id, "locale": self.preferred_locale, "features": []},
            guild_locale=self.preferred_locale,
            channel={**copy.deepcopy(channel), "permissions": str(perms)},
            member=self._member_payload(author["id"], with_user=True, perms=True),
        )
        return payload

    # -- user actions: messages -------------------------------------------------------------

    async def user_message(
        self,
        content: str,
        *,
        user: str | JSON = "alice",
        channel_id: str | None = None,
        reply_to: JSON | str | None = None,
        attachments: list[JSON | tuple[str, bytes]] | tuple[()] = (),
        mention_bot: bool = False,
        ping_reply: bool = False,
    ) -> JSON:
        """A user posts a message (MESSAGE_CREATE, blanked for bots without MESSAGE_CONTENT).

        `mention_bot` prefixes `<@bot>`; `ping_reply` keeps the reply-ping on (a mention).
        """
        author, channel = self._user_for(user), self._channel(channel_id)
        if mention_bot and f"<@{self.app_id}>" not in content:
            content = f"<@{self.app_id}> {content}"
        files = [self.upload_attachment(a[1], a[0]) if isinstance(a, tuple) else a for a in attachments]
        msg = make_message(
            self._ids.next(),
            channel["id"],
            author,
            channel.get("guild_id"),
            content=content,
            attachments=copy.deepcopy(files),
            mentions=[self.bot_user] if mention_bot else [],
        )
        if reply_to is not None:
            self._make_reply(msg, self._current(reply_to), ping_reply)
        await self._store(msg)
        return msg

    def _make_reply(self, msg: JSON, target: JSON, ping: bool) -> None:
        """Turn a user message into a reply to `target`."""
        ref = dict(target)
        ref.pop("referenced_message", None)
        msg.update(
            type=MSG_REPLY,
            referenced_message=ref,
            message_reference={
                "type": 0,
                "message_id": target["id"],
                "channel_id": target["channel_id"],
                "guild_id": target.get("guild_id"),
            },
        )
        if ping and all(u["id"] != target["author"]["id"] for u in msg["mentions"]):
            msg["mentions"].append(target["author"])


def _modal_inputs(modal: JSON) -> list[JSON]:
    """Input components (with custom_id) of a modal definition."""
    inputs = []
    for comp in modal.get("components") or []:
        for child in [*(comp.get("components") or []), comp.get("component")]:
            if isinstance(child, dict) and child.get("custom_id"):
                inputs.append(child)
    return inputs


def _submitted(comp: JSON, values: dict[str, Any]) -> JSON:
    """The submitted form of one modal input."""
    custom_id = str(comp.get("custom_id"))
    kind = comp["type"]
    if kind in SELECT_TYPES:
        return {"type": kind, "custom_id": custom_id, "values": list(values.get(custom_id, []))}
    return {"type": kind, "custom_id": custom_id, "value": str(values.get(custom_id, ""))}
