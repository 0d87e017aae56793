"""The Gemini generateContent request body: history, the new user turn, image options, safety and tools."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from bot.providers.base import MAX_SEED, GenerateRequest, ImageData, JsonDict, ModelSpec, Turn

RESOLUTION_WIRE = {"0.5K": "512", "1K": "1K", "2K": "2K", "4K": "4K"}
#: The adjustable harm categories of image models, and each /settings safety level's threshold.
HARMS = ("HARASSMENT", "HATE_SPEECH", "SEXUALLY_EXPLICIT", "DANGEROUS_CONTENT")
HARM_CATEGORIES = tuple(f"HARM_CATEGORY_{harm}" for harm in HARMS)
THRESHOLDS = {"strict": "BLOCK_LOW_AND_ABOVE", "relaxed": "BLOCK_ONLY_HIGH"}
#: Models whose Google Search grounding also searches images. The SDKs' `GoogleSearch.searchTypes`
#: ("the set of search types to enable; if not set, web search is enabled by default") takes
#: `webSearch` and `imageSearch` (js-genai `types.SearchTypes`, google-genai-kotlin `SearchTypes`);
#: Gemini 3.1 Flash Image adds Google Image Search grounding, 3 Pro Image searches the web only (the
#: Gemini API image guide grounds it with a bare `google_search: {}`). ModelSpec says only whether a
#: model grounds at all, so the family is named here.
IMAGE_SEARCH_FAMILIES = ("gemini-3.1-flash-image",)


@dataclass(frozen=True, slots=True)
class Inline:
    """An inlineData part of a built body, the image it carries (what may move to the Files API) and
    the placeholder standing for its base64 in the body's skeleton."""

    part: JsonDict
    image: ImageData
    key: str


@dataclass(frozen=True, slots=True)
class Draft:
    """A body whose images' base64 is kept apart: the skeleton names each by a placeholder string.

    json.dumps of 20 MB of base64 holds the GIL for the whole call (and aiohttp runs it on the event
    loop); the skeleton is small, and base64 needs no JSON escaping, so the bytes sent are the
    skeleton's JSON with each placeholder's base64 spliced in between its quotes.
    """

    skeleton: JsonDict
    #: placeholder -> base64 of the image it stands for
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    nonce: str = ""

    def but(self, skeleton: JsonDict) -> Draft:
        """The same images under another skeleton (a seed, or file references, changed)."""
        return replace(self, skeleton=skeleton)

    def pieces(self) -> list[bytes]:
        """The body's JSON in pieces: the skeleton's text, cut where the base64 goes in."""
        text = json.dumps(self.skeleton)
        if not self.blobs:
            return [text.encode()]
        # Only a whole JSON string that is a placeholder matches: an escaped quote is `\"`.
        cut = re.split(rf'(?<=")({re.escape(self.nonce)}-\d+)(?=")', text)
        return [self.blobs[piece] if n % 2 else piece.encode() for n, piece in enumerate(cut)]

    def encode(self) -> bytes:
        """The body as sent (megabytes are copied: run it in a worker thread)."""
        return b"".join(self.pieces())

    def filled(self) -> JsonDict:
        """The body as a dict with the base64 in place (what the bytes parse to)."""
        contents = [{**c, "parts": [self._filled(p) for p in c["parts"]]} for c in self.skeleton["contents"]]
        return {**self.skeleton, "contents": contents}

    def _filled(self, part: JsonDict) -> JsonDict:
        """One part with its base64 in place of its placeholder."""
        blob = self.blobs.get(part.get("inlineData", {}).get("data", ""))
        if blob is None:
            return part
        return {**part, "inlineData": {**part["inlineData"], "data": blob.decode()}}


class _Images:
    """Collects a body's images while it is built: each one's base64 under a fresh placeholder."""

    def __init__(self) -> None:
        # A random part the text of a prompt or a signature cannot guess: only placeholders match.
        self.nonce = f"image-{secrets.token_hex(8)}"
        self.blobs: dict[str, bytes] = {}
        self.inline: list[Inline] = []

    def part(self, image: ImageData, signature: str | None = None) -> JsonDict:
        """An inlineData part, with its thought signature when it had one."""
        key = f"{self.nonce}-{len(self.blobs)}"
        self.blobs[key] = base64.b64encode(image.data)
        part: JsonDict = {"inlineData": {"mimeType": image.mime, "data": key}}
        if signature is not None:
            part["thoughtSignature"] = signature
        self.inline.append(Inline(part, image, key))
        return part


def _turn_parts(turn: Turn, images: _Images) -> list[JsonDict]:
    """Rebuild a stored turn's parts, model parts with their signatures in their original order."""
    recorded = turn.state.get("parts") if turn.role == "model" else None
    if not recorded:
        parts: list[JsonDict] = [{"text": turn.text}] if turn.text else []
        return parts + [images.part(img) for img in turn.images]
    parts = []
    for entry in recorded:
        signature = entry.get("thoughtSignature")
        if "image" in entry:
            index = int(entry["image"])
            if index < len(turn.images):
                parts.append(images.part(turn.images[index], signature))
        elif "text" in entry:
            part: JsonDict = {"text": entry["text"]}
            if signature is not None:
                part["thoughtSignature"] = signature
            parts.append(part)
    return parts


def search_tool(spec: ModelSpec) -> JsonDict:
    """The googleSearch tool for a grounding model: web search, and image search where it has it."""
    if spec.name.startswith(IMAGE_SEARCH_FAMILIES):
        return {"googleSearch": {"searchTypes": {"webSearch": {}, "imageSearch": {}}}}
    return {"googleSearch": {}}  # no searchTypes: web search, the API's default


def build_body(request: GenerateRequest, spec: ModelSpec) -> JsonDict:
    """The generateContent request body as a dict (what the bytes sent parse to)."""
    return draft_body(request, spec).filled()


def draft_body(request: GenerateRequest, spec: ModelSpec) -> Draft:
    """The generateContent request body: history, then the new user turn, then image options.

    It base64-encodes every image: run it in a worker thread.
    """
    return _drafted(request, spec, _Images())


def _drafted(request: GenerateRequest, spec: ModelSpec, images: _Images) -> Draft:
    """The body, its images collected in images (the size check may move some to files)."""
    contents = [
        {"role": turn.role, "parts": parts}
        for turn in request.history
        if (parts := _turn_parts(turn, images))
    ]
    user_parts: list[JsonDict] = [{"text": request.prompt}]
    user_parts += [images.part(img) for i in request.images if (img := i.as_image()) is not None]
    contents.append({"role": "user", "parts": user_parts})
    image_config: JsonDict = {}
    if request.aspect_ratio:
        image_config["aspectRatio"] = request.aspect_ratio
    if request.resolution and len(spec.resolutions) > 1:
        image_config["imageSize"] = RESOLUTION_WIRE[request.resolution]
    config: JsonDict = {"responseModalities": ["TEXT", "IMAGE"]}
    if image_config:
        config["imageConfig"] = image_config
    if request.seed is not None:
        config["seed"] = request.seed
    if request.thinking and request.thinking in spec.thinking_levels:  # never one it would refuse
        config.setdefault("thinkingConfig", {})["thinkingLevel"] = request.thinking.upper()
    if request.on_preview is not None and spec.thinking_levels:  # previews show the thought images
        config.setdefault("thinkingConfig", {})["includeThoughts"] = True
    body: JsonDict = {"contents": contents, "generationConfig": config}
    if threshold := THRESHOLDS.get(request.safety):  # "default": Google's own thresholds
        body["safetySettings"] = [{"category": c, "threshold": threshold} for c in HARM_CATEGORIES]
    if request.search and spec.grounding:  # a model without grounding answers a search with a 400
        body["tools"] = [search_tool(spec)]
    return Draft(body, images.blobs, images.nonce)


def seeded(body: JsonDict, count: int) -> list[JsonDict]:
    """One body per image: with a seed, the n-th image's is seed + n (one seed would repeat one image)."""
    config = body["generationConfig"]
    if "seed" not in config:
        return [body] * count
    seeds = ((config["seed"] + n) % (MAX_SEED + 1) for n in range(count))
    return [{**body, "generationConfig": {**config, "seed": seed}} for seed in seeds]


# --- the inline limit: which images go through the Files API ------------------------------------------

#: Bytes in one megabyte of `inline_limit_mb` (Google states its limits in decimal megabytes).
MB = 1_000_000


@dataclass(frozen=True, slots=True)
class Move:
    """An inline image sent as a file instead: its part in the body, its bytes and their SHA-256."""

    part: JsonDict
    image: ImageData
    digest: str


@dataclass(frozen=True, slots=True)
class SizedBody:
    """A drafted body, its size as sent (moved images counted as file references) and what moves."""

    draft: Draft
    size: int
    moves: tuple[Move, ...] = ()

    @property
    def body(self) -> JsonDict:
        """The body as a dict, every image still inline."""
        return self.draft.filled()


def json_size(value: JsonDict) -> int:
    """Bytes of the JSON as aiohttp sends it (json.dumps defaults: ASCII only, so one byte a character)."""
    return len(json.dumps(value))


def file_part(part: JsonDict, mime: str, uri: str) -> JsonDict:
    """The fileData part that stands for an inline one (its thought signature kept)."""
    reference: JsonDict = {"fileData": {"mimeType": mime, "fileUri": uri}}
    if (signature := part.get("thoughtSignature")) is not None:
        reference["thoughtSignature"] = signature
    return reference


def sized_body(request: GenerateRequest, spec: ModelSpec, limit: int, uri_room: int) -> SizedBody:
    """The body, and the images (largest first, history and references alike) that must go through
    the Files API for it to fit in limit bytes; none when it fits.

    It encodes and measures megabytes: run it in a worker thread.
    """
    images = _Images()
    draft = _drafted(request, spec, images)
    size = sum(len(piece) for piece in draft.pieces())  # exactly the encoded length, nothing joined
    moves: list[Move] = []
    stand_in = "u" * uri_room  # a file's URI is known only once uploaded; this bounds it
    for entry in sorted(images.inline, key=lambda e: len(e.image.data), reverse=True):
        if size <= limit:
            break
        sent = json_size(entry.part) - len(entry.key) + len(draft.blobs[entry.key])
        size += json_size(file_part(entry.part, entry.image.mime, stand_in)) - sent
        moves.append(Move(entry.part, entry.image, hashlib.sha256(entry.image.data).hexdigest()))
    return SizedBody(draft, size, tuple(moves))


def with_files(body: JsonDict, moves: Sequence[Move], files: Mapping[str, tuple[str, str]]) -> JsonDict:
    """The body with each moved image's part replaced by its file (files: digest -> (mime, uri)).

    The original body is left as it was: each key's call gets its own copy of the parts list.
    """
    swap = {id(m.part): file_part(m.part, *files[m.digest]) for m in moves}
    contents = [{**c, "parts": [swap.get(id(p), p) for p in c["parts"]]} for c in body["contents"]]
    return {**body, "contents": contents}
