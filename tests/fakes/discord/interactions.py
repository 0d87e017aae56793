"""Interaction payload building and the InteractionHandle tests use to watch a bot's responses."""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tests.fakes.discord.payloads import (
    FLAG_COMPONENTS_V2,
    JSON,
    OPT_ATTACHMENT,
    OPT_BOOLEAN,
    OPT_CHANNEL,
    OPT_INTEGER,
    OPT_MENTIONABLE,
    OPT_NUMBER,
    OPT_ROLE,
    OPT_STRING,
    OPT_SUB_COMMAND,
    OPT_SUB_COMMAND_GROUP,
    OPT_USER,
    PERM_ADMINISTRATOR,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

RESOLVED_TYPES = {OPT_USER, OPT_CHANNEL, OPT_ROLE, OPT_MENTIONABLE, OPT_ATTACHMENT}
#: Default seconds a test waits for the bot before calling it a hang. Waits end as soon as what they
#: wait for happens, so this only bounds a failing test, however busy the machine is.
WAIT_TIMEOUT = 60.0


class InteractionFailed(AssertionError):
    """The interaction can no longer produce what the test waits for (as a user would see it)."""


class CommandUnavailable(AssertionError):
    """A real Discord client would not let this user invoke this command here."""


def has_visible_content(msg: JSON) -> bool:
    """Whether a message shows something to the user (not just a loading state)."""
    if msg.get("content") or msg.get("embeds") or msg.get("attachments") or msg.get("poll"):
        return True
    return bool(int(msg.get("flags") or 0) & FLAG_COMPONENTS_V2 and msg.get("components"))


class InteractionHandle:
    """Everything the bot did with one interaction the fake dispatched."""

    def __init__(self, fake: FakeDiscord, payload: JSON) -> None:
        self._fake = fake
        self.payload = payload
        self.id: str = payload["id"]
        self.token: str = payload["token"]
        self.type: int = payload["type"]
        self.created_at = time.monotonic()
        self.ack: JSON | None = None
        self.ack_type: int | None = None
        self.ack_latency: float | None = None
        self.ack_error: str | None = None
        self.ephemeral = False
        self.autocomplete_choices: list[JSON] | None = None
        self.modal: JSON | None = None
        self.original_id: str | None = None
        self.followup_ids: list[str] = []
        self.loading = False
        self.done_message_id: str | None = None
        self.receivers = 0
        self.errors: list[str] = []

    def __repr__(self) -> str:
        return f"<InteractionHandle id={self.id} type={self.type} ack={self.ack_type}>"

    @property
    def original(self) -> JSON | None:
        """Current state of the @original response message."""
        return self._fake._by_id.get(self.original_id or "")

    @property
    def followups(self) -> list[JSON]:
        """Followup messages sent with the interaction token (excluding the edited original)."""
        return [self._fake._by_id[i] for i in self.followup_ids if i in self._fake._by_id]

    def files(self, message: JSON) -> list[tuple[str, bytes]]:
        """(filename, bytes) of a message's attachments."""
        return self._fake.files_of(message)

    async def wait_ack(self, timeout: float = WAIT_TIMEOUT) -> JSON:
        """Wait for the initial callback and return its body; raises if it never (validly) came."""
        await self._wait(
            lambda: self.ack is not None or self.ack_error is not None, timeout, "acknowledgement"
        )
        if self.ack is None:
            raise InteractionFailed(f"interaction {self.id} was not acknowledged: {self.ack_error}")
        return self.ack

    async def wait_done(self, timeout: float = WAIT_TIMEOUT) -> JSON:
        """Wait until a response is visible to the user and return that message."""
        await self._wait(
            lambda: self.done_message_id is not None or self._dead_reason() is not None,
            timeout,
            "a visible response",
        )
        if self.done_message_id is None:
            raise InteractionFailed(f"interaction {self.id}: {self._dead_reason()}")
        return self._fake._by_id.get(self.done_message_id) or {"id": self.done_message_id}

    async def _wait(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait on the fake, naming the Discord errors this interaction got on timeout."""
        try:
            await self._fake._wait(predicate, timeout, f"{what} of interaction {self.id}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; errors returned to the bot: {self.errors or 'none'}") from None

    def _note_error(self, status: int, code: int, message: str) -> None:
        """Remember an error Discord returned for this interaction."""
        self.errors.append(f"{status} {code} {message}")

    def _dead_reason(self) -> str | None:
        """Why no visible message can come any more, if so."""
        if self.ack_error is not None:
            return self.ack_error
        if self.ack_type == 8:
            return "answered with autocomplete choices, not a message"
        if self.ack_type == 9:
            return "answered with a modal, not a message"
        return None

    def _mark_done(self, msg: JSON) -> None:
        """Record the first message that made the response visible."""
        if self.done_message_id is None and has_visible_content(msg):
            self.done_message_id = msg["id"]

    def expired(self, lifetime: float) -> bool:
        """Whether the interaction token is past its lifetime."""
        return time.monotonic() - self.created_at > lifetime


def new_token() -> str:
    """Return an opaque, URL-safe interaction token like Discord's."""
    return "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(96)


def infer_option_type(value: Any) -> int:
    """Guess an option type when the command was never synced."""
    if isinstance(value, bool):
        return OPT_BOOLEAN
    if isinstance(value, int):
        return OPT_INTEGER
    if isinstance(value, float):
        return OPT_NUMBER
    if isinstance(value, dict) and "filename" in value:
        return OPT_ATTACHMENT
    return OPT_STRING


class OptionBuilder:
    """Turns {name: python value} into typed interaction options plus `resolved` data."""

    def __init__(self, fake: FakeDiscord, focused: str | None, force: bool) -> None:
        self.fake = fake
        self.focused = focused
        self.force = force
        self.resolved: dict[str, dict[str, JSON]] = {}

    def build(self, definitions: list[JSON] | None, values: dict[str, Any]) -> list[JSON]:
        """Build the option list for one (sub)command level."""
        out = []
        defs = {d["name"]: d for d in definitions or []}
        for name, value in values.items():
            spec = defs.get(name)
            if spec is None and definitions is not None:
                raise ValueError(f"option {name!r} is not in the synced command: {sorted(defs)}")
            kind = spec["type"] if spec else infer_option_type(value)
            out.append(self._option(name, kind, value, spec or {}))
        if definitions is not None and self.focused is None and not self.force:
            missing = [d["name"] for d in definitions if d.get("required") and d["name"] not in values]
            if missing:
                raise ValueError(f"required options missing: {missing}")
        return out

    def _option(self, name: str, kind: int, value: Any, spec: JSON) -> JSON:
        """Build one option."""
        opt: JSON = {"name": name, "type": kind}
        if name == self.focused:
            opt.update(value=str(value), focused=True)
            return opt
        if not self.force:
            check_option_value(spec, value)
        opt["value"] = self._value(kind, value)
        return opt

    def _value(self, kind: int, value: Any) -> Any:
        """Convert a python value to the wire value, filling `resolved`."""
        if kind == OPT_STRING:
            return str(value)
        if kind == OPT_INTEGER:
            return int(value)
        if kind == OPT_BOOLEAN:
            return bool(value)
        if kind == OPT_NUMBER:
            return float(value)
        if kind == OPT_ATTACHMENT:
            return self._attachment(value)
        if kind == OPT_CHANNEL:
            return self._add("channels", self.fake._channel_for_option(value))
        if kind == OPT_ROLE:
            return self._add("roles", self.fake._role_for_option(value))
        if kind == OPT_USER or (kind == OPT_MENTIONABLE and self._is_user(value)):
            return self._user(value)
        if kind == OPT_MENTIONABLE:
            return self._add("roles", self.fake._role_for_option(value))
        raise ValueError(f"unsupported option type {kind}")

    def _is_user(self, value: Any) -> bool:
        """Whether a mentionable value names a user (users win over roles of the same name)."""
        try:
            self.fake._user_for(value)
        except (ValueError, KeyError):
            return False
        return True

    def _add(self, bucket: str, obj: JSON | None) -> str:
        """Add an object to resolved[bucket] and return its id."""
        if obj is None:
            raise ValueError(f"unknown {bucket[:-1]}")
        self.resolved.setdefault(bucket, {})[obj["id"]] = obj
        return str(obj["id"])

    def _user(self, value: Any) -> str:
        """Resolve a user option (name, id or user dict) with its member."""
        user = self.fake._user_for(value)
        member = self.fake._member_payload(user["id"], with_user=False)
        if member is not None:
            self.resolved.setdefault("members", {})[user["id"]] = member
        return self._add("users", user)

    def _attachment(self, value: Any) -> str:
        """Resolve an attachment option: an uploaded attachment dict or (filename, bytes)."""
        if isinstance(value, tuple):
            value = self.fake.upload_attachment(value[1], value[0])
        att = copy.deepcopy(value)
        att["ephemeral"] = True
        return self._add("attachments", att)


def check_option_value(spec: JSON, value: Any) -> None:
    """Reject values a Discord client would not let the user submit."""
    choices = spec.get("choices")
    if choices and value not in [c["value"] for c in choices]:
        raise ValueError(f"{spec['name']}={value!r} is not one of the choices")
    if isinstance(value, int | float) and not isinstance(value, bool):
        low, high = spec.get("min_value"), spec.get("max_value")
        if (low is not None and value < low) or (high is not None and value > high):
            raise ValueError(f"{spec['name']}={value!r} outside [{low}, {high}]")
    if isinstance(value, str):
        low, high = spec.get("min_length"), spec.get("max_length")
        if (low is not None and len(value) < low) or (high is not None and len(value) > high):
            raise ValueError(f"{spec['name']} length {len(value)} outside [{low}, {high}]")


def build_command_data(
    fake: FakeDiscord,
    name: str,
    values: dict[str, Any],
    command: JSON | None,
    *,
    focused: str | None = None,
    force: bool = False,
) -> JSON:
    """Build `data` for a chat-input command or autocomplete ("group sub" names allowed)."""
    top, *path = name.split()
    builder = OptionBuilder(fake, focused, force)
    definitions = command.get("options", []) if command else None
    options = _nested_options(builder, definitions, path, values)
    data: JSON = {"id": command["id"] if command else fake._ids.next(), "name": top, "type": 1}
    data["options"] = options
    if builder.resolved:
        data["resolved"] = builder.resolved
    if command and command.get("guild_id"):
        data["guild_id"] = command["guild_id"]
    return data


def _nested_options(
    builder: OptionBuilder, definitions: list[JSON] | None, path: list[str], values: dict[str, Any]
) -> list[JSON]:
    """Wrap leaf options into sub-command / group options following `path`."""
    if not path:
        return builder.build(definitions, values)
    head, rest = path[0], path[1:]
    spec = next((d for d in definitions or [] if d["name"] == head), None)
    if definitions is not None and spec is None:
        raise ValueError(f"sub-command {head!r} not found")
    kind = spec["type"] if spec else (OPT_SUB_COMMAND_GROUP if rest else OPT_SUB_COMMAND)
    inner = spec.get("options", []) if spec else None
    return [{"name": head, "type": kind, "options": _nested_options(builder, inner, rest, values)}]


def check_available(command: JSON, permissions: int, channel: JSON, context: int) -> None:
    """Raise CommandUnavailable when Discord's client would hide the command."""
    required = command.get("default_member_permissions")
    if required is not None and not permissions & PERM_ADMINISTRATOR:
        needed = int(required)
        if needed == 0 or permissions & needed != needed:
            raise CommandUnavailable(f"/{command['name']} needs permissions {needed}")
    if command.get("nsfw") and not channel.get("nsfw"):
        raise CommandUnavailable(f"/{command['name']} is age-restricted (nsfw channel only)")
    contexts = command.get("contexts")
    if contexts is None and context != 0 and command.get("dm_permission") is False:
        raise CommandUnavailable(f"/{command['name']} is guild-only")
    if contexts is not None and context not in contexts:
        raise CommandUnavailable(f"/{command['name']} is not available in context {context}")
