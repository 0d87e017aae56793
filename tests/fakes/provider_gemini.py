"""Fake Google Gemini API `generateContent` server for the Nano Banana image models (seed 001)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.imagegen import (
    ALL_RATIOS,
    STANDARD_RATIOS,
    dims_for,
    image_dims,
    nearest_ratio,
    sniff_mime,
)
from tests.fakes.provider_base import (
    COMMON_FAULTS,
    Fault,
    FakeProvider,
    b64,
    decode_base64,
    format_seconds,
    random_id,
)

INPUT_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
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
GEMINI_FAULTS = COMMON_FAULTS | FINISH_FAULTS | {
    "prompt_blocked",
    "image_safety",
    "image_safety_text",
    "no_image",
    "text_only",
    "rate_limited_short",
    "truncated_base64",
}
_DATA_FIELDS = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)

#: message type -> {camelCase field: (message type or None for opaque/scalar, repeated)}
SCHEMA: dict[str, dict[str, tuple[str | None, bool]]] = {
    "GenerateContentRequest": {
        "model": (None, False),
        "contents": ("Content", True),
        "tools": (None, True),
        "toolConfig": (None, False),
        "safetySettings": ("SafetySetting", True),
        "systemInstruction": ("Content", False),
        "generationConfig": ("GenerationConfig", False),
        "cachedContent": (None, False),
    },
    "Content": {"role": (None, False), "parts": ("Part", True)},
    "Part": {
        **{name: (None, False) for name in _DATA_FIELDS},
        "inlineData": ("Blob", False),
        "fileData": ("FileData", False),
        "thought": (None, False),
        "thoughtSignature": (None, False),
        "videoMetadata": (None, False),
        "partMetadata": (None, False),
        "mediaResolution": (None, False),
    },
    "Blob": {"mimeType": (None, False), "data": (None, False)},
    "FileData": {"mimeType": (None, False), "fileUri": (None, False)},
    "SafetySetting": {"category": (None, False), "threshold": (None, False)},
    "GenerationConfig": {
        **{
            name: (None, False)
            for name in (
                "responseMimeType",
                "responseSchema",
                "responseJsonSchema",
                "candidateCount",
                "maxOutputTokens",
                "temperature",
                "topP",
                "topK",
                "seed",
                "presencePenalty",
                "frequencyPenalty",
                "responseLogprobs",
                "logprobs",
                "enableEnhancedCivicAnswers",
                "speechConfig",
                "mediaResolution",
            )
        },
        "stopSequences": (None, True),
        "responseModalities": (None, True),
        "thinkingConfig": ("ThinkingConfig", False),
        "imageConfig": ("ImageConfig", False),
    },
    "ThinkingConfig": {
        "includeThoughts": (None, False),
        "thinkingBudget": (None, False),
        "thinkingLevel": (None, False),
    },
    "ImageConfig": {"aspectRatio": (None, False), "imageSize": (None, False)},
}


@dataclass(frozen=True)
class ModelSpec:
    """Per-model limits of the Gemini image models."""

    family: str
    max_images: int
    ratios: tuple[str, ...]
    sizes: tuple[str, ...]


FLASH_25 = ModelSpec("flash-2.5", 3, STANDARD_RATIOS, ("1K",))
PRO_3 = ModelSpec("pro-3", 14, STANDARD_RATIOS, ("1K", "2K", "4K"))
FLASH_31 = ModelSpec("flash-3.1", 14, ALL_RATIOS, ("512", "1K", "2K", "4K"))
MODELS: dict[str, ModelSpec] = {
    "gemini-2.5-flash-image": FLASH_25,
    "gemini-3-pro-image-preview": PRO_3,
    "gemini-3-pro-image": PRO_3,
    "nano-banana-pro-preview": PRO_3,
    "gemini-3.1-flash-image-preview": FLASH_31,
    "gemini-3.1-flash-image": FLASH_31,
}


class GeminiError(Exception):
    """A Google API error envelope to send back."""

    def __init__(
        self, code: int, status: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        """Remember the parts of the `{"error": {...}}` body."""
        super().__init__(message)
        self.code, self.status, self.message, self.details = code, status, message, details

    def response(self, headers: dict[str, str] | None = None) -> web.Response:
        """Render as an aiohttp JSON response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.details is not None:
            error["details"] = self.details
        return web.json_response({"error": error}, status=self.code, headers=headers)


def invalid(message: str, details: list[dict[str, Any]] | None = None) -> GeminiError:
    """A 400 INVALID_ARGUMENT error."""
    return GeminiError(400, "INVALID_ARGUMENT", message, details)


def snake(name: str) -> str:
    """lowerCamelCase -> snake_case."""
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def _unknown_field(name: str, path: str) -> GeminiError:
    """The proto-JSON "Unknown name" error with a BadRequest field violation."""
    where = f" at '{path}'" if path else ""
    message = f'Invalid JSON payload received. Unknown name "{name}"{where}: Cannot find field.'
    violation = {"field": path, "description": message}
    detail = {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
    return invalid(message, [detail])


def _bad_value(path: str, type_name: str, value: Any) -> GeminiError:
    """The proto-JSON "Invalid value" error."""
    shown = str(value)[:80]
    return invalid(
        f"Invalid value at '{path}' "
        f"(type.googleapis.com/google.ai.generativelanguage.v1beta.{type_name}), {shown}"
    )


def canonical(value: Any, type_name: str, path: str = "") -> dict[str, Any]:
    """Convert a camelCase/snake_case proto-JSON object to camelCase, rejecting unknown names."""
    if not isinstance(value, dict):
        raise _bad_value(path or type_name, type_name, value)
    fields = SCHEMA[type_name]
    aliases = {snake(name): name for name in fields} | {name: name for name in fields}
    result: dict[str, Any] = {}
    for key, item in value.items():
        name = aliases.get(key)
        if name is None:
            raise _unknown_field(key, path)
        child, repeated = fields[name]
        child_path = f"{path}.{snake(name)}" if path else snake(name)
        result[name] = _canonical_field(item, child, repeated, child_path)
    return result


def _canonical_field(value: Any, child: str | None, repeated: bool, path: str) -> Any:
    """Canonicalise one field value (recursing into messages and repeated fields)."""
    if repeated:
        if not isinstance(value, list):
            raise _bad_value(path, child or "Value", value)
        if child is None:
            return value
        return [canonical(item, child, f"{path}[{i}]") for i, item in enumerate(value)]
    return value if child is None else canonical(value, child, path)


@dataclass
class ParsedRequest:
    """What the fake needs from a validated generateContent request."""

    prompt: str
    input_images: list[bytes]
    ratio: str
    size: str
    want_text: bool
    want_image: bool
    include_thoughts: bool


def _check_inline(blob: dict[str, Any], path: str) -> bytes:
    """Validate one inlineData blob and return the decoded image bytes."""
    mime = blob.get("mimeType", "")
    raw = blob.get("data", "")
    if not isinstance(raw, str) or not raw:
        raise invalid(f"* GenerateContentRequest.{path}.data: inline_data.data is required.\n")
    data = decode_base64(raw)
    if data is None:
        raise invalid(
            f"Invalid value at '{path}.data' (TYPE_BYTES), Base64 decoding failed for "
            f'"{raw[:40]}"'
        )
    if mime not in INPUT_MIME_TYPES:
        raise invalid(f"Unsupported MIME type: {mime}")
    if sniff_mime(data) not in INPUT_MIME_TYPES:
        raise invalid(
            "Unable to process input image. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        )
    return data


def _check_part(part: dict[str, Any], path: str) -> bytes | None:
    """Validate a part; return its image bytes when it carries inline image data."""
    present = [name for name in _DATA_FIELDS if name in part]
    if not present:
        raise invalid(
            f"* GenerateContentRequest.{path}.data: required oneof field 'data' must have one "
            "initialized field\n"
        )
    if "text" in present and not isinstance(part["text"], str):
        raise _bad_value(f"{path}.text", "TYPE_STRING", part["text"])
    if "inlineData" in part:
        return _check_inline(part["inlineData"], f"{path}.inline_data")
    return None


def _check_contents(contents: list[dict[str, Any]]) -> tuple[str, list[bytes]]:
    """Validate all turns; return the last user turn's prompt text and input images."""
    if not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n")
    prompt, images = "", []
    for i, content in enumerate(contents):
        role = content.get("role") or "user"
        if role not in ("user", "model"):
            raise invalid("Please use a valid role: user, model.")
        parts = content.get("parts") or []
        if not parts:
            raise invalid(
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.\n"
            )
        turn_images = [_check_part(part, f"contents[{i}].parts[{j}]") for j, part in enumerate(parts)]
        if role == "user":
            images = [img for img in turn_images if img is not None]
            images += [b"" for part in parts if _is_image_file(part)]
            prompt = " ".join(p["text"] for p in parts if isinstance(p.get("text"), str))
    return prompt, images


def _is_image_file(part: dict[str, Any]) -> bool:
    """Whether a part references an image through fileData."""
    return str(part.get("fileData", {}).get("mimeType", "")).startswith("image/")


def _check_modalities(config: dict[str, Any]) -> tuple[bool, bool]:
    """Validate responseModalities; return (want_text, want_image)."""
    modalities = config.get("responseModalities") or ["TEXT", "IMAGE"]
    for i, item in enumerate(modalities):
        if item not in ("TEXT", "IMAGE", "AUDIO"):
            raise _bad_value(
                f"generation_config.response_modalities[{i}]", "GenerationConfig.Modality", item
            )
    if "AUDIO" in modalities:
        raise invalid("Model does not support the requested response modalities: audio")
    return "TEXT" in modalities, "IMAGE" in modalities


def _check_image_config(
    config: dict[str, Any], spec: ModelSpec, images: list[bytes]
) -> tuple[str, str]:
    """Validate aspectRatio / imageSize for the model; return (ratio, size) with defaults."""
    image_config = config.get("imageConfig", {})
    ratio = image_config.get("aspectRatio")
    size = image_config.get("imageSize")
    if ratio is not None and ratio not in spec.ratios:
        raise invalid(
            f"* GenerateContentRequest.generation_config.image_config.aspect_ratio: Unsupported "
            f"aspect ratio: {ratio}. Supported values are: {', '.join(spec.ratios)}.\n"
        )
    if size is not None and size not in spec.sizes:
        raise invalid(
            f"* GenerateContentRequest.generation_config.image_config.image_size: Unsupported "
            f"image size: {size}. Supported values are: {', '.join(spec.sizes)}.\n"
        )
    if ratio is None:
        dims = image_dims(images[0]) if images and images[0] else None
        ratio = nearest_ratio(*dims, spec.ratios) if dims else "1:1"
    return ratio, size or "1K"


def parse_request(body: Any, model: str, spec: ModelSpec) -> ParsedRequest:
    """Validate a generateContent body against the model's limits."""
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received. Unexpected token.")
    request = canonical(body, "GenerateContentRequest")
    prompt, images = _check_contents(request.get("contents", []))
    if len(images) > spec.max_images:
        raise invalid(
            f"Too many input images: {len(images)}. {model} accepts at most "
            f"{spec.max_images} images per prompt."
        )
    config = request.get("generationConfig", {})
    if config.get("candidateCount", 1) != 1:
        raise invalid("Multiple candidates is not enabled for this model.")
    want_text, want_image = _check_modalities(config)
    ratio, size = _check_image_config(config, spec, images)
    thoughts = bool(config.get("thinkingConfig", {}).get("includeThoughts", False))
    return ParsedRequest(prompt, images, ratio, size, want_text, want_image, thoughts)


def error_for_fault(fault: Fault, model: str) -> GeminiError | None:
    """The Google error envelope for an HTTP-error fault, or None for other faults."""
    message = fault.message
    if fault.name == "rate_limited":
        seconds = format_seconds(36.0 if fault.retry_after is None else fault.retry_after)
        text = message or RATE_LIMIT_MESSAGE.format(model=model, seconds=seconds)
        return GeminiError(
            fault.status or 429, "RESOURCE_EXHAUSTED", text, _quota_details(model, seconds)
        )
    simple = {
        "rate_limited_short": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
        "unavailable": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        "server_error": (500, "INTERNAL", INTERNAL_MESSAGE),
        "bad_gateway": (502, "UNAVAILABLE", "Bad Gateway"),
        "gateway_timeout": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    }
    if fault.name in simple:
        code, status, text = simple[fault.name]
        return GeminiError(fault.status or code, status, message or text)
    if fault.name == "bad_key":
        return bad_key_error(fault.status or 400, message or BAD_KEY_MESSAGE)
    return None


def bad_key_error(code: int = 400, message: str = BAD_KEY_MESSAGE) -> GeminiError:
    """The real invalid-API-key answer (400 INVALID_ARGUMENT, reason API_KEY_INVALID)."""
    details = [
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

    def _add_routes(self, app: web.Application) -> None:
        """Register POST /v1beta/models/{model}:generateContent."""
        app.router.add_post("/v1beta/models/{target}", self._handle)

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
        return None if key == self.api_key else bad_key_error()

    async def _handle(self, request: web.Request) -> web.Response:
        """POST {model}:generateContent."""
        model, _, method = request.match_info["target"].partition(":")
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
        rec = request["rec"]
        if rec.json is None:
            raise invalid("Invalid JSON payload received. Unexpected token.")
        parsed = parse_request(rec.json, model, spec)
        fault = self._next_fault()
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
            candidate = _candidate_for_fault(Fault("text_only", message=parsed.prompt or None))
        if candidate is not None:
            return self._envelope(model, parsed, candidates=[candidate])
        parts = await self._image_parts(spec, parsed, truncate=fault.name == "truncated_base64")
        candidate = {"content": {"parts": parts, "role": "model"}, "finishReason": "STOP", "index": 0}
        body = self._envelope(model, parsed, candidates=[candidate])
        body["usageMetadata"].update(self._output_usage(spec, parsed, body["usageMetadata"]))
        return body

    def _output_usage(
        self, spec: ModelSpec, parsed: ParsedRequest, usage: dict[str, Any]
    ) -> dict[str, Any]:
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
        return result

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
        final = {"thoughtSignature": b64(os.urandom(72)), **final}
        return [*await self._thought_parts(spec, parsed, fmt), final]

    async def _thought_parts(
        self, spec: ModelSpec, parsed: ParsedRequest, fmt: str
    ) -> list[dict[str, Any]]:
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
