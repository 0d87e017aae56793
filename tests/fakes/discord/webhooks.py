"""Interaction callback and interaction-webhook routes, with Discord's timing rules."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from tests.fakes.discord.interactions import InteractionHandle
from tests.fakes.discord.limits import (
    DiscordError,
    check_choices,
    check_modal,
    invalid_form,
    not_found,
    unknown_message,
)
from tests.fakes.discord.messages import INTERACTION_FLAGS, MessageBuilder
from tests.fakes.discord.payloads import (
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    INTERACTION_AUTOCOMPLETE,
    INTERACTION_COMMAND,
    INTERACTION_COMPONENT,
    INTERACTION_MODAL_SUBMIT,
    JSON,
)
from tests.fakes.discord.rest import (
    API_PREFIX,
    Body,
    json_response,
    no_content,
    parse_body,
    query_flag,
)

if TYPE_CHECKING:
    from tests.fakes.discord import FakeDiscord

WebhookAction = Callable[[web.Request, InteractionHandle, Body], Awaitable[web.Response]]
DISCORD_ACK_LIMIT = 3.0
ALLOWED_CALLBACKS = {
    INTERACTION_COMMAND: {4, 5, 9},
    INTERACTION_COMPONENT: {4, 5, 6, 7, 9},
    INTERACTION_AUTOCOMPLETE: {8},
    INTERACTION_MODAL_SUBMIT: {4, 5, 6, 7},
}


class InteractionRoutes:
    """POST /interactions/{id}/{token}/callback and /webhooks/{app}/{token}[/messages/...]."""

    def __init__(self, fake: FakeDiscord, builder: MessageBuilder) -> None:
        self.fake = fake
        self.builder = builder

    def install(self, router: web.UrlDispatcher, prefix: str) -> None:
        """Register the routes."""
        hook = prefix + "/webhooks/{app_id}/{token}"
        router.add_post(prefix + "/interactions/{interaction_id}/{token}/callback", self.callback)
        router.add_post(hook, self.followup)
        for method in ("GET", "PATCH", "DELETE"):
            router.add_route(method, hook + "/messages/{message_id}", self.message)

    # -- initial response -------------------------------------------------------------------

    async def callback(self, request: web.Request) -> web.Response:
        """Handle the initial interaction response."""
        received = time.monotonic()
        body = await parse_body(request)
        payload: JSON = body.json or {}
        iid = request.match_info["interaction_id"]
        inter = self.fake._interactions.get(iid)
        what = f"interaction {iid} callback type {payload.get('type')}"
        if inter is None or inter.token != request.match_info["token"]:
            raise not_found(10062, "Unknown interaction", f"{what}: unknown interaction/token")
        try:
            return await self._callback(request, inter, body, received, what)
        except DiscordError as exc:
            inter._note_error(exc.status, exc.code, exc.message)
            raise

    async def _callback(
        self, request: web.Request, inter: InteractionHandle, body: Body, received: float, what: str
    ) -> web.Response:
        """Validate and carry out an initial response."""
        payload: JSON = body.json or {}
        self._check_timing(inter, received - inter.created_at, what)
        kind = int(payload.get("type") or 0)
        if kind not in ALLOWED_CALLBACKS.get(inter.type, set()):
            raise invalid_form([("type", f"callback {kind} invalid for {inter.type}")], what)
        message = await self._apply(inter, kind, payload.get("data") or {}, body, what)
        inter.ack, inter.ack_type = payload, kind
        inter.ack_latency = received - inter.created_at
        self.fake._notify()
        if not query_flag(request, "with_response"):
            return no_content()
        return json_response(self._callback_response(inter, kind, message))

    def _check_timing(self, inter: InteractionHandle, latency: float, what: str) -> None:
        """Enforce one acknowledgement within the deadline."""
        if inter.ack is not None:
            raise DiscordError(
                400,
                40060,
                "Interaction has already been acknowledged.",
                violation=f"{what}: second acknowledgement",
            )
        if latency > self.fake.ack_deadline or inter.ack_error is not None:
            inter.ack_error = inter.ack_error or (
                f"acknowledged after {latency:.2f}s (deadline {self.fake.ack_deadline}s): 10062"
            )
            self.fake._notify()
            raise not_found(10062, "Unknown interaction", f"{what}: {inter.ack_error}")
        if latency > DISCORD_ACK_LIMIT:
            self.fake._violation(f"{what}: acknowledged after {latency:.2f}s (Discord allows 3s)")

    async def _apply(
        self, inter: InteractionHandle, kind: int, data: JSON, body: Body, what: str
    ) -> JSON | None:
        """Carry out the callback; return the message it created or updated."""
        if kind == 4:
            return await self._create_original(inter, data, body, what)
        if kind == 5:
            return await self._defer(inter, int(data.get("flags") or 0))
        if kind in (6, 7):
            return await self._update_source(inter, kind, data, body, what)
        if kind == 8:
            errors = check_choices(data.get("choices") or [])
            if errors:
                raise invalid_form(errors, what)
            inter.autocomplete_choices = list(data.get("choices") or [])
            return None
        errors = check_modal(data)
        if errors:
            raise invalid_form(errors, what)
        inter.modal = data
        self.fake._modals[data["custom_id"]] = data
        return None

    async def _create_original(self, inter: InteractionHandle, data: JSON, body: Body, what: str) -> JSON:
        """Type 4: the response message."""
        fields = self.builder.fields(
            data, body.files, base=None, limit=_limit(inter), what=what, prefix="data."
        )
        msg = self.builder.interaction_message(inter, fields, int(data.get("flags") or 0))
        inter.original_id, inter.ephemeral = msg["id"], bool(msg["flags"] & FLAG_EPHEMERAL)
        await self.fake._store(msg)
        inter._mark_done(msg)
        return msg

    async def _defer(self, inter: InteractionHandle, flags: int) -> JSON:
        """Type 5: a loading ("thinking") message."""
        flags = FLAG_LOADING | (flags & FLAG_EPHEMERAL)
        msg = self.builder.interaction_message(inter, {}, flags)
        inter.original_id, inter.ephemeral, inter.loading = msg["id"], bool(flags & 64), True
        await self.fake._store(msg)
        return msg

    async def _update_source(
        self, inter: InteractionHandle, kind: int, data: JSON, body: Body, what: str
    ) -> JSON | None:
        """Types 6/7: acknowledge / edit the message the component is on."""
        source = inter.payload.get("message")
        msg = self.fake._by_id.get(source["id"]) if source else None
        if msg is None:
            if kind == 7:
                raise invalid_form([("type", "UPDATE_MESSAGE needs a source message")], what)
            return None
        inter.original_id, inter.ephemeral = msg["id"], bool(msg["flags"] & FLAG_EPHEMERAL)
        if kind == 7:
            fields = self.builder.fields(
                data, body.files, base=msg, limit=_limit(inter), what=what, prefix="data."
            )
            await self.fake._edit(msg, fields)
            inter._mark_done(msg)
        return msg

    def _callback_response(self, inter: InteractionHandle, kind: int, msg: JSON | None) -> JSON:
        """The 200 body for ?with_response=1."""
        info: JSON = {
            "id": inter.id,
            "type": inter.type,
            "response_message_loading": kind == 5,
            "response_message_ephemeral": inter.ephemeral,
        }
        if msg is not None:
            info["response_message_id"] = msg["id"]
        out: JSON = {"interaction": info}
        if kind in (4, 7) and msg is not None:
            out["resource"] = {"type": kind, "message": msg}
        return out

    # -- webhook (followups and @original) --------------------------------------------------

    async def _guarded(self, request: web.Request, action: WebhookAction) -> web.Response:
        """Run a webhook action, noting its errors on the interaction."""
        body = await parse_body(request)
        inter = self.fake._by_token.get(request.match_info["token"])
        try:
            checked = self._check_webhook(request, inter)
            return await action(request, checked, body)
        except DiscordError as exc:
            if inter is not None:
                inter._note_error(exc.status, exc.code, exc.message)
            raise

    def _check_webhook(self, request: web.Request, inter: InteractionHandle | None) -> InteractionHandle:
        """The live, acknowledged interaction behind a webhook token."""
        what = f"{request.method} {request.path.removeprefix(API_PREFIX)[:40]}…"
        if inter is None or request.match_info["app_id"] != self.fake.app_id:
            raise not_found(10015, "Unknown Webhook", f"{what}: unknown webhook")
        if inter.expired(self.fake.token_lifetime):
            age = time.monotonic() - inter.created_at
            raise DiscordError(
                401,
                50027,
                "Invalid Webhook Token",
                violation=f"{what}: token used {age:.1f}s after the interaction "
                f"(lifetime {self.fake.token_lifetime}s)",
            )
        if inter.ack is None:
            raise not_found(10015, "Unknown Webhook", f"{what}: interaction was never acknowledged")
        return inter

    async def followup(self, request: web.Request) -> web.Response:
        """POST /webhooks/{app}/{token}: a followup (or the deferred original, first time)."""
        return await self._guarded(request, self._followup)

    async def _followup(self, request: web.Request, inter: InteractionHandle, body: Body) -> web.Response:
        """Create a followup, or finish the deferred original with the first one."""
        what = f"POST followup of interaction {inter.id}"
        payload: JSON = body.json or {}
        original = inter.original
        if inter.loading and original is not None:
            fields = self.builder.fields(payload, body.files, base=None, limit=_limit(inter), what=what)
            fields["flags"] = original["flags"] & ~FLAG_LOADING
            inter.loading = False
            await self.fake._edit(original, fields)
            msg = original
        else:
            fields = self.builder.fields(payload, body.files, base=None, limit=_limit(inter), what=what)
            flags = int(payload.get("flags") or 0) & INTERACTION_FLAGS
            msg = self.builder.interaction_message(inter, fields, flags, followup=True)
            inter.followup_ids.append(msg["id"])
            await self.fake._store(msg)
        inter._mark_done(msg)
        self.fake._notify()
        return json_response(msg) if query_flag(request, "wait") else no_content()

    async def message(self, request: web.Request) -> web.Response:
        """GET/PATCH/DELETE /webhooks/{app}/{token}/messages/{id|@original}."""
        return await self._guarded(request, self._message)

    async def _message(self, request: web.Request, inter: InteractionHandle, body: Body) -> web.Response:
        """Read, edit or delete a response message."""
        message_id = request.match_info["message_id"]
        what = f"{request.method} message {message_id} of interaction {inter.id}"
        allowed = {inter.original_id, *inter.followup_ids}
        target = inter.original_id if message_id == "@original" else message_id
        msg = self.fake._by_id.get(target or "") if target in allowed else None
        if msg is None:
            raise unknown_message()
        if request.method == "GET":
            return json_response(msg)
        if request.method == "DELETE":
            await self.fake._delete(msg)
            return no_content()
        return json_response(await self._edit(inter, msg, body, what))

    async def _edit(self, inter: InteractionHandle, msg: JSON, body: Body, what: str) -> JSON:
        """PATCH a response message; editing a loading original finishes it."""
        payload: JSON = body.json or {}
        fields = self.builder.fields(payload, body.files, base=msg, limit=_limit(inter), what=what)
        if msg["flags"] & FLAG_LOADING:
            fields["flags"] = msg["flags"] & ~FLAG_LOADING
            if msg["id"] == inter.original_id:
                inter.loading = False
        await self.fake._edit(msg, fields)
        inter._mark_done(msg)
        return msg


def _limit(inter: InteractionHandle) -> int:
    """The per-file upload limit the interaction announced."""
    return int(inter.payload["attachment_size_limit"])
