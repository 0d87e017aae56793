"""Fake Gemini `models/{model}:streamGenerateContent`: the generateContent answer, sent in pieces.

The answer is the one `:generateContent` gives for the same request (the same validation, scripted
faults, images and signatures), split as Google streams it: each thought text and text in two
pieces (a signature on the last piece), each image in a chunk of its own, then a last chunk with
`finishReason`, the whole `usageMetadata` and any `groundingMetadata`. With `?alt=sse` the chunks are
server-sent events (`data: <json>\\r\\n\\r\\n`); without it, one JSON array. Errors before the answer
are the HTTP status with a one-element JSON list body, as Google sends them to streaming calls.

Tests steer the next stream through `FakeGemini.stream` (a StreamControl): `hold` pauses it before a
chunk until the test sets the returned event; `break_at` sends an error event or cuts the connection
in place of a chunk; `extra_thought_images` adds interim images before the model's own.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

from tests.fakes.providers.base import b64
from tests.fakes.providers.gemini_request import GeminiError

if TYPE_CHECKING:
    from tests.fakes.providers.gemini import FakeGemini

#: What a chunk carries: a piece of a thought, an interim image, a piece of text, the image, the end.
ChunkKind = Literal["thought_text", "thought_image", "text", "image", "end"]
OVERLOADED = GeminiError(503, "UNAVAILABLE", "The model is overloaded. Please try again later.")


@dataclass
class Hold:
    """Wait for gate before the nth chunk of a kind."""

    kind: ChunkKind
    nth: int
    gate: asyncio.Event


@dataclass
class _Break:
    """In place of the first chunk of a kind: an error event, or the connection cut."""

    kind: ChunkKind
    how: Literal["error", "cut"]
    error: GeminiError


def error_body(error: GeminiError) -> list[dict[str, Any]]:
    """A Google error as a streaming call gets it: a one-element list."""
    body: dict[str, Any] = {"code": error.code, "message": error.message, "status": error.status}
    if error.details is not None:
        body["details"] = error.details
    return [{"error": body}]


def sse(chunk: Any) -> bytes:
    """One server-sent event."""
    return b"data: " + json.dumps(chunk).encode() + b"\r\n\r\n"


def pieces(part: dict[str, Any]) -> list[tuple[ChunkKind, dict[str, Any]]]:
    """A part as it is streamed: text in two pieces (the signature on the last), an image whole."""
    thought = part.get("thought") is True
    text = part.get("text")
    if isinstance(text, str):
        kind: ChunkKind = "thought_text" if thought else "text"
        if len(text) < 2:
            return [(kind, part)]
        half = len(text) // 2
        first = {k: v for k, v in part.items() if k != "thoughtSignature"} | {"text": text[:half]}
        return [(kind, first), (kind, {**part, "text": text[half:]})]
    return [("thought_image" if thought else "image", part)]


class StreamControl:
    """How the fake streams its next answers, and what it streamed."""

    def __init__(self) -> None:
        #: Interim thought images added before the model's own (Google sends up to two).
        self.extra_thought_images = 0
        #: Each streamed answer whole, as `:generateContent` would have sent it.
        self.answers: list[dict[str, Any]] = []
        #: The chunks each stream sent, in order.
        self.sent: list[list[dict[str, Any]]] = []
        self._holds: list[Hold] = []
        self._breaks: list[_Break] = []

    def hold(self, before: ChunkKind = "image", nth: int = 1) -> asyncio.Event:
        """The next stream waits before its nth chunk of this kind until the event is set."""
        gate = asyncio.Event()
        self._holds.append(Hold(before, nth, gate))
        return gate

    def break_at(
        self,
        before: ChunkKind = "image",
        how: Literal["error", "cut"] = "error",
        error: GeminiError = OVERLOADED,
    ) -> None:
        """The next stream sends an error event (or cuts the connection) instead of this chunk."""
        self._breaks.append(_Break(before, how, error))

    async def respond(self, fake: FakeGemini, request: web.Request, model: str) -> web.StreamResponse:
        """POST {model}:streamGenerateContent."""
        fake.calls += 1
        try:
            response = await fake._generate(request, model)
        except GeminiError as error:
            return web.json_response(error_body(error), status=error.code)
        try:
            answer = json.loads(response.text or "")
        except ValueError:
            answer = None
        if response.status != 200 or not isinstance(answer, dict):
            return response  # reset, malformed, html, redirect: as generateContent sends them
        chunks = await self._chunks(fake, answer)
        self.answers.append(answer)
        holds, breaks = self._holds, self._breaks
        self._holds, self._breaks = [], []
        if request.query.get("alt") != "sse":
            return web.json_response([chunk for _, chunk in chunks])
        return await self._send(request, chunks, holds, breaks)

    async def _send(
        self,
        request: web.Request,
        chunks: list[tuple[ChunkKind, dict[str, Any]]],
        holds: list[Hold],
        breaks: list[_Break],
    ) -> web.StreamResponse:
        """Stream the chunks as events, pausing and breaking where the test asked."""
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        sent: list[dict[str, Any]] = []
        self.sent.append(sent)
        seen: Counter[str] = Counter()
        for kind, chunk in chunks:
            seen[kind] += 1
            for hold in holds:
                if hold.kind == kind and hold.nth == seen[kind]:
                    await hold.gate.wait()
            broken = next((b for b in breaks if b.kind == kind), None)
            if broken is not None and broken.how == "cut":
                if request.transport is not None:
                    request.transport.abort()
                return resp
            if broken is not None:
                await resp.write(sse(error_body(broken.error)))
                break
            await resp.write(sse(chunk))
            sent.append(chunk)
        await resp.write_eof()
        return resp

    async def _chunks(
        self, fake: FakeGemini, answer: dict[str, Any]
    ) -> list[tuple[ChunkKind, dict[str, Any]]]:
        """The answer in the chunks Google would stream it in (an answer without parts: one chunk)."""
        candidates = answer.get("candidates") or []
        parts = list(((candidates[0].get("content") or {}).get("parts") or []) if candidates else [])
        if not parts:
            return [("end", answer)]
        if self.extra_thought_images:
            at = next(
                (i for i, p in enumerate(parts) if p.get("thought") and "inlineData" in p), len(parts) - 1
            )
            parts[at:at] = [await self._interim(fake, n) for n in range(self.extra_thought_images)]
        envelope = {k: answer[k] for k in ("modelVersion", "responseId") if k in answer}
        prompt_tokens = answer.get("usageMetadata", {}).get("promptTokenCount", 0)
        early = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        chunks: list[tuple[ChunkKind, dict[str, Any]]] = [
            (kind, {"candidates": [{"content": {"parts": [piece], "role": "model"}, "index": 0}]})
            for part in parts
            for kind, piece in pieces(part)
        ]
        for _, chunk in chunks:
            chunk.update(usageMetadata=early, **envelope)
        rest = {k: v for k, v in candidates[0].items() if k != "content"}
        last = {"content": {"parts": [{"text": ""}], "role": "model"}, **rest}
        chunks.append(("end", {**answer, "candidates": [last]}))
        return chunks

    async def _interim(self, fake: FakeGemini, n: int) -> dict[str, Any]:
        """An extra interim thought image (small: the model's own comes after it)."""
        data = await fake._encode(256, 256, "JPEG", f"interim:{n}")
        return {"thought": True, "inlineData": {"mimeType": "image/jpeg", "data": b64(data)}}
