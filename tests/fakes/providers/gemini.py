"""Fake Google Gemini API `generateContent` server for the Nano Banana image models."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.imagegen import dims_for
from tests.fakes.providers.base import (
    COMMON_FAULTS,
    FakeProvider,
    Fault,
    b64,
    format_seconds,
    random_id,
    request_key,
)
from tests.fakes.providers.gemini_files import FakeGeminiFiles
from tests.fakes.providers.gemini_grounding import DEFAULT_PAGES, grounding_metadata, search_types
from tests.fakes.providers.gemini_request import (
    FLASH_25,
    MODELS,
    PRO_3,
    GeminiError,
    ModelSpec,
    ParsedRequest,
    invalid,
    parse_request,
)
from tests.fakes.providers.gemini_stream import StreamControl

IMAGE_SAFETY_MESSAGE = (
    "Unable to show the generated image. The image was filtered out because it violated Google's "
    "[Generative AI Prohibited Use policy](https://policies.google.com/terms/generative-ai/use-policy)."
    " You will not be charged for blocked images. Try rephrasing the prompt. If you think this was "
    "an error, [send feedback](https://ai.google.dev/gemini-api/docs/troubleshooting)."
)
BAD_KEY_MESSAGE = "API key not valid. Please pass a valid API key."
MISSING_KEY_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
INTERNAL_MESSAGE = (
    "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting"
)
RATE_LIMIT_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    "information on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits. To "
    "monitor your current usage, head to: https://ai.dev/rate-limit. \n* Quota exceeded for "
    "metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, "
    "model: {model}\nPlease retry in {seconds}s."
)
#: Fault names that become `finishReason: <NAME>` with an empty content.
FINISH_FAULTS = frozenset(
    {
        "prohibited_content",
        "safety",
        "recitation",
        "max_tokens",
        "image_prohibited_content",
        "image_recitation",
        "image_other",
        "other",
        "blocklist",
        "spii",
        "language",
    }
)
GEMINI_FAULTS = (
    COMMON_FAULTS
    | FINISH_FAULTS
    | {
        "prompt_blocked",
        "image_safety",
        "image_safety_text",
        "no_image",
        "text_only",
        "rate_limited_short",
        "truncated_base64",
    }
)


#: models.list answers 50 models a page unless asked, and never more than 1000.
LIST_PAGE_DEFAULT = 50
LIST_PAGE_MAX = 1000


def model_entry(
    model: str,
    methods: Sequence[str] = ("generateContent", "countTokens"),
    *,
    display_name: str | None = None,
) -> dict[str, Any]:
    """One `Model` of models.list, as Google serialises it (token limits are illustrative)."""
    return {
        "name": f"models/{model}",
        "version": "001",
        "displayName": display_name or f"Nano Banana ({model})",
        "description": f"{model} (fake)",
        "inputTokenLimit": 65536,
        "outputTokenLimit": 32768,
        "supportedGenerationMethods": list(methods),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
    }


def default_listing() -> list[dict[str, Any]]:
    """What the fake lists: the image models it serves, plus a text model and an embedding model."""
    return [
        *(model_entry(model) for model in MODELS),
        model_entry("gemini-2.5-flash", display_name="Gemini 2.5 Flash"),
        model_entry(
            "gemini-embedding-001", ("embedContent", "countTextTokens"), display_name="Gemini Embedding"
        ),
    ]


def error_for_fault(fault: Fault, model: str) -> GeminiError | None:
    """The Google error envelope for an HTTP-error fault, or None for other faults."""
    message = fault.message
    if fault.name == "rate_limited":
        seconds = format_seconds(36.0 if fault.retry_after is None else fault.retry_after)
        text = message or RATE_LIMIT_MESSAGE.format(model=model, seconds=seconds)
        return GeminiError(fault.status or 429, "RESOURCE_EXHAUSTED", text, _quota_details(model, seconds))
    simple = {
        "rate_limited_short": (
            429,
            "RESOURCE_EXHAUSTED",
            "Resource has been exhausted (e.g. check quota).",
        ),
        "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        "server_error": (500, "INTERNAL", INTERNAL_MESSAGE),
        "bad_gateway": (502, "UNAVAILABLE", "Bad Gateway"),
        "gateway_timeout": (
            504,
            "DEADLINE_EXCEEDED",
            "Deadline expired before operation could complete.",
        ),
    }
    if fault.name in simple:
        code, status, text = simple[fault.name]
        return GeminiError(fault.status or code, status, message or text)
    if fault.name == "bad_key":
        return bad_key_error(fault.status or 400, message or BAD_KEY_MESSAGE)
    return None


def bad_key_error(code: int = 400, message: str = BAD_KEY_MESSAGE) -> GeminiError:
    """The real invalid-API-key answer (400 INVALID_ARGUMENT, reason API_KEY_INVALID)."""
    details: list[dict[str, Any]] = [
        {
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {
            "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
            "locale": "en-US",
            "message": message,
        },
    ]
    return GeminiError(code, "INVALID_ARGUMENT", message, details)


def _quota_details(model: str, seconds: str) -> list[dict[str, Any]]:
    """Help + QuotaFailure + RetryInfo details of a quota 429."""
    violation = {
        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
        "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "quotaDimensions": {"location": "global", "model": model},
    }
    link = {
        "description": "Learn more about Gemini API quotas",
        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
    }
    return [
        {"@type": "type.googleapis.com/google.rpc.Help", "links": [link]},
        {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [violation]},
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{seconds}s"},
    ]


def _candidate_for_fault(fault: Fault) -> dict[str, Any] | None:
    """The single candidate of a 200 "no image" answer, or None when not such a fault."""
    if fault.name == "image_safety":
        message = fault.message or IMAGE_SAFETY_MESSAGE
        return {"content": {}, "finishReason": "IMAGE_SAFETY", "finishMessage": message, "index": 0}
    if fault.name == "image_safety_text":
        text = fault.message or "I can't create that."
        content = {"parts": [{"text": text}], "role": "model"}
        return {"content": content, "finishReason": "IMAGE_SAFETY", "index": 0}
    if fault.name in FINISH_FAULTS:
        return {"content": {}, "finishReason": fault.name.upper(), "index": 0}
    if fault.name == "no_image":
        return {"finishReason": "NO_IMAGE", "index": 0}
    if fault.name == "text_only":
        text = fault.message or "I can't draw that, but here is a poem."
        content = {"parts": [{"text": text}], "role": "model"}
        return {"content": content, "finishReason": "STOP", "index": 0}
    return None


class FakeGemini(FakeProvider):
    """Fake `generativelanguage.googleapis.com` serving the Nano Banana image models."""

    FAULTS: ClassVar[frozenset[str]] = GEMINI_FAULTS

    def __init__(self, api_key: str | None = None, *, api_keys: Sequence[str] = ()) -> None:
        super().__init__(api_key, api_keys=api_keys)
        #: Every thoughtSignature this fake has sent, in order (multi-turn tests compare them).
        self.signatures: list[str] = []
        #: The models GET /v1beta/models lists (tests may add or replace entries: see model_entry).
        self.listed_models: list[dict[str, Any]] = default_listing()
        #: The most models one page of the list holds (Google's cap; tests lower it to force paging).
        self.list_page_max = LIST_PAGE_MAX
        self._page_tokens: dict[str, int] = {}
        #: What a grounded answer's searches find, as (title, uri).
        self.grounding_pages: list[tuple[str, str]] = list(DEFAULT_PAGES)
        #: The Files API: uploads (recorded), files per project, fileData parts resolved.
        self.files = FakeGeminiFiles(self)
        #: usageMetadata fields every generated image reports instead of the usual counts.
        self.usage_override: dict[str, Any] = {}
        #: streamGenerateContent: holds and breaks for the next streams, and what they sent.
        self.stream = StreamControl()

    def _add_routes(self, app: web.Application) -> None:
        """Register generateContent (POST), models.get and models.list (GET)."""
        app.router.add_post("/v1beta/models/{target}", self._handle)
        app.router.add_get("/v1beta/models/{target}", self._model_info)
        app.router.add_get("/v1beta/models", self._list_models)
        self.files.add_routes(app)

    async def _model_info(self, request: web.Request) -> web.Response:
        """GET models/{model}: the model's metadata (what `check` uses to prove the key)."""
        model = request.match_info["target"]
        if (denied := self._check_key(request)) is not None:
            return denied.response()
        if model not in MODELS:
            return self._route_not_found(request)
        return web.json_response(
            {
                "name": f"models/{model}",
                "displayName": f"Nano Banana ({model})",
                "supportedGenerationMethods": ["generateContent", "countTokens"],
            }
        )

    async def _list_models(self, request: web.Request) -> web.Response:
        """GET models (models.list): `pageSize` (default 50, at most 1000), opaque `pageToken`s."""
        if (denied := self._check_key(request)) is not None:
            return denied.response()
        try:
            size = int(request.query.get("pageSize") or LIST_PAGE_DEFAULT)
        except ValueError:
            return invalid("Invalid value at 'page_size' (TYPE_INT32)").response()
        size = min(size if size > 0 else LIST_PAGE_DEFAULT, LIST_PAGE_MAX, self.list_page_max)
        token = request.query.get("pageToken")
        start = self._page_tokens.get(token, -1) if token else 0
        if start < 0:
            return invalid("Invalid page token.").response()
        body: dict[str, Any] = {}
        if page := self.listed_models[start : start + size]:  # proto3 JSON omits an empty list
            body["models"] = page
        if start + size < len(self.listed_models):  # omitted on the last page
            body["nextPageToken"] = next_token = random_id()
            self._page_tokens[next_token] = start + size
        return web.json_response(body)

    def _route_not_found(self, request: web.Request) -> web.Response:
        """Google-style 404."""
        return GeminiError(404, "NOT_FOUND", "Requested entity was not found.").response()

    def _sample_body(self) -> Any:
        """A success-shaped payload for the "malformed" fault."""
        part = {"inlineData": {"mimeType": "image/png", "data": b64(os.urandom(96))}}
        content = {"parts": [{"text": "Here is your image"}, part], "role": "model"}
        return {"candidates": [{"content": content, "finishReason": "STOP", "index": 0}]}

    def _check_key(self, request: web.Request) -> GeminiError | None:
        """403 for a missing key, 400 API_KEY_INVALID for a wrong one."""
        if self.api_key is None:
            return None
        key = request.headers.get("x-goog-api-key") or request.query.get("key")
        if not key:
            return GeminiError(403, "PERMISSION_DENIED", MISSING_KEY_MESSAGE)
        return None if self.accepts(key) else bad_key_error()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """POST {model}:generateContent (or :streamGenerateContent)."""
        model, _, method = request.match_info["target"].partition(":")
        if method == "streamGenerateContent":
            return await self.stream.respond(self, request, model)
        if method != "generateContent":
            return self._route_not_found(request)
        self.calls += 1
        try:
            return await self._generate(request, model)
        except GeminiError as error:
            return error.response()

    async def _generate(self, request: web.Request, model: str) -> web.Response:
        """Auth, model lookup, validation, scripted faults, then a success answer."""
        if (denied := self._check_key(request)) is not None:
            raise denied
        spec = MODELS.get(model)
        if spec is None:
            raise GeminiError(
                404,
                "NOT_FOUND",
                f"models/{model} is not found for API version v1beta, or is not supported for "
                "generateContent. Call ListModels to see the list of available models and their "
                "supported methods.",
            )
        rec = self._recorded(request)
        if rec.json is None:
            raise invalid("Invalid JSON payload received. Unexpected token.")
        parsed = parse_request(rec.json, model, spec, self.files.resolver(request_key(request)))
        parsed.search = search_types(parsed.tools, model, spec)
        fault = self._next_fault(request)
        await self._pause(fault)
        if (answer := self._transport_fault(request, fault)) is not None:
            return answer
        if (error := error_for_fault(fault, model)) is not None:
            raise error
        return web.json_response(await self._answer(fault, model, spec, parsed))

    def _envelope(self, model: str, parsed: ParsedRequest, **extra: Any) -> dict[str, Any]:
        """Top-level response fields shared by all 200 answers."""
        prompt_tokens = max(1, len(parsed.prompt) // 4) + 258 * len(parsed.input_images)
        usage = {"promptTokenCount": prompt_tokens, "totalTokenCount": prompt_tokens}
        return {**extra, "usageMetadata": usage, "modelVersion": model, "responseId": random_id()}

    async def _answer(
        self, fault: Fault, model: str, spec: ModelSpec, parsed: ParsedRequest
    ) -> dict[str, Any]:
        """The 200 body: a content fault, or a generated image."""
        if fault.name == "prompt_blocked":
            feedback = {"blockReason": fault.message or "PROHIBITED_CONTENT"}
            return self._envelope(model, parsed, promptFeedback=feedback)
        candidate = _candidate_for_fault(fault)
        if candidate is None and not parsed.want_image:
            text = "Here is a description of the image you asked for."
            candidate = _candidate_for_fault(Fault("text_only", message=text))
        if candidate is not None:
            return self._envelope(model, parsed, candidates=[candidate])
        parts = await self._image_parts(spec, parsed, truncate=fault.name == "truncated_base64")
        candidate = {
            "content": {"parts": parts, "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
        if parsed.search:
            candidate["groundingMetadata"] = grounding_metadata(
                parsed.prompt, parsed.search, self.grounding_pages
            )
        body = self._envelope(model, parsed, candidates=[candidate])
        body["usageMetadata"].update(self._output_usage(spec, parsed, body["usageMetadata"]))
        return body

    def _output_usage(self, spec: ModelSpec, parsed: ParsedRequest, usage: dict[str, Any]) -> dict[str, Any]:
        """Token accounting for a generated image."""
        image_tokens = 1290 if spec is FLASH_25 else (2000 if parsed.size == "4K" else 1120)
        thoughts = 0 if spec is FLASH_25 else 215
        candidates = image_tokens + 8
        total = usage["promptTokenCount"] + candidates + thoughts
        result = {
            "candidatesTokenCount": candidates,
            "totalTokenCount": total,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": image_tokens}],
        }
        if thoughts:
            result["thoughtsTokenCount"] = thoughts
        return {**result, **self.usage_override}

    async def _image_parts(
        self, spec: ModelSpec, parsed: ParsedRequest, truncate: bool
    ) -> list[dict[str, Any]]:
        """Parts of a successful answer (text, thoughts, final image)."""
        width, height = dims_for(parsed.ratio, parsed.size)
        fmt = "PNG" if spec is FLASH_25 else "JPEG"
        mime = "image/png" if fmt == "PNG" else "image/jpeg"
        data = b64(await self._render(width, height, fmt, parsed.prompt))
        if truncate:
            data = data[: len(data) // 2 // 4 * 4]
        final: dict[str, Any] = {"inlineData": {"mimeType": mime, "data": data}}
        if spec is FLASH_25:
            text = [{"text": f"Here is your image: {parsed.prompt}"}] if parsed.want_text else []
            return [*text, final]
        signature = b64(os.urandom(72))
        self.signatures.append(signature)
        final = {"thoughtSignature": signature, **final}
        return [*await self._thought_parts(spec, parsed, fmt), final]

    async def _thought_parts(self, spec: ModelSpec, parsed: ParsedRequest, fmt: str) -> list[dict[str, Any]]:
        """Thought text (always for Pro) and an interim thought image (when includeThoughts)."""
        parts: list[dict[str, Any]] = []
        if spec is PRO_3 or parsed.include_thoughts:
            text = "**Composing the scene**\n\nI am planning the layout and lighting."
            parts.append({"text": text, "thought": True})
        if parsed.include_thoughts:
            width, height = dims_for(parsed.ratio, "1K")
            interim = await self._encode(width // 2, height // 2, fmt, f"thought:{parsed.prompt}")
            blob = {"mimeType": "image/jpeg", "data": b64(interim)}
            parts.append({"thought": True, "inlineData": blob})
        return parts
