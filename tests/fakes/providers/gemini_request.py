"""Request schema and validation for the fake Gemini generateContent endpoint."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.imagegen import (
    ALL_RATIOS,
    STANDARD_RATIOS,
    image_dims,
    nearest_ratio,
    sniff_mime,
)
from tests.fakes.providers.base import decode_base64

INPUT_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})
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
        "tools": ("Tool", True),
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
    "Tool": {
        **{
            name: (None, False)
            for name in ("googleSearchRetrieval", "codeExecution", "urlContext", "googleMaps", "fileSearch")
        },
        "functionDeclarations": (None, True),
        "googleSearch": ("GoogleSearch", False),
    },
    "GoogleSearch": {"timeRangeFilter": (None, False), "searchTypes": ("SearchTypes", False)},
    "SearchTypes": {"webSearch": (None, False), "imageSearch": (None, False)},
}


#: HarmCategory values the Gemini API filters on (the older PaLM categories are refused).
HARM_CATEGORIES = frozenset(
    {
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_CIVIC_INTEGRITY",
    }
)
PALM_CATEGORIES = frozenset(
    {
        "HARM_CATEGORY_UNSPECIFIED",
        "HARM_CATEGORY_DEROGATORY",
        "HARM_CATEGORY_TOXICITY",
        "HARM_CATEGORY_VIOLENCE",
        "HARM_CATEGORY_SEXUAL",
        "HARM_CATEGORY_MEDICAL",
        "HARM_CATEGORY_DANGEROUS",
    }
)
HARM_THRESHOLDS = frozenset(
    {
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
        "BLOCK_LOW_AND_ABOVE",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_NONE",
        "OFF",
    }
)
THINKING_LEVELS = frozenset({"THINKING_LEVEL_UNSPECIFIED", "MINIMAL", "LOW", "MEDIUM", "HIGH"})
INT32_MAX = 2**31 - 1


@dataclass(frozen=True)
class ModelSpec:
    """Per-model limits of the Gemini image models."""

    family: str
    max_images: int
    ratios: tuple[str, ...]
    sizes: tuple[str, ...]
    #: thinkingConfig.thinkingLevel values the model takes (none: it refuses the field).
    thinking: tuple[str, ...] = ()
    #: Whether it takes the googleSearch tool, and its image search (searchTypes.imageSearch).
    grounding: bool = False
    image_search: bool = False


FLASH_25 = ModelSpec("flash-2.5", 3, STANDARD_RATIOS, ("1K",))
PRO_3 = ModelSpec("pro-3", 14, STANDARD_RATIOS, ("1K", "2K", "4K"), ("LOW", "HIGH"), grounding=True)
# 3.1 Flash grounds in web and image search (True, True).
FLASH_31 = ModelSpec("flash-3.1", 14, ALL_RATIOS, ("512", "1K", "2K", "4K"), ("MINIMAL", "HIGH"), True, True)
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
    shown = json.dumps(value)[:80]
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
    #: The request's tools, canonical (see gemini_grounding.search_types).
    tools: list[dict[str, Any]] = field(default_factory=list)
    #: The searches grounding runs ("web", "image"); empty: no googleSearch tool.
    search: tuple[str, ...] = ()


def _check_inline(blob: dict[str, Any], path: str) -> bytes:
    """Validate one inlineData blob and return the decoded image bytes."""
    mime = blob.get("mimeType", "")
    raw = blob.get("data", "")
    if not isinstance(raw, str) or not raw:
        raise invalid(f"* GenerateContentRequest.{path}.data: inline_data.data is required.\n")
    data = decode_base64(raw)
    if data is None:
        raise invalid(
            f"Invalid value at '{path}.data' (TYPE_BYTES), Base64 decoding failed for \"{raw[:40]}\""
        )
    if mime not in INPUT_MIME_TYPES:
        raise invalid(f"Unsupported MIME type: {mime}")
    if sniff_mime(data) not in INPUT_MIME_TYPES:
        raise invalid(
            "Unable to process input image. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting"
        )
    return data


#: Reads a fileData part (at a path) as the bytes of the file it references (see gemini_files.py).
FileResolver = Callable[[dict[str, Any], str], bytes]


def _check_part(part: dict[str, Any], path: str, resolve: FileResolver | None = None) -> bytes | None:
    """Validate a part; return its image bytes when it carries image data (inline, or a file)."""
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
    if "fileData" in part and resolve is not None:
        return resolve(part["fileData"], f"{path}.file_data")
    return None


def _check_contents(
    contents: list[dict[str, Any]], resolve: FileResolver | None = None
) -> tuple[str, list[bytes]]:
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
        turn_images = [
            _check_part(part, f"contents[{i}].parts[{j}]", resolve) for j, part in enumerate(parts)
        ]
        if role == "user":
            images = [img for img in turn_images if img is not None]
            if resolve is None:  # no Files API to read them from: counted, not read
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
            raise _bad_value(f"generation_config.response_modalities[{i}]", "GenerationConfig.Modality", item)
    if "AUDIO" in modalities:
        raise invalid("Model does not support the requested response modalities: audio")
    return "TEXT" in modalities, "IMAGE" in modalities


def _check_image_config(config: dict[str, Any], spec: ModelSpec, images: list[bytes]) -> tuple[str, str]:
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


def parse_request(
    body: Any, model: str, spec: ModelSpec, resolve: FileResolver | None = None
) -> ParsedRequest:
    """Validate a generateContent body against the model's limits (fileData read through resolve)."""
    if not isinstance(body, dict):
        raise invalid("Invalid JSON payload received. Unexpected token.")
    request = canonical(body, "GenerateContentRequest")
    prompt, images = _check_contents(request.get("contents", []), resolve)
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
    _check_seed(config)
    _check_thinking_level(config, spec)
    _check_safety_settings(request.get("safetySettings", []))
    return ParsedRequest(
        prompt, images, ratio, size, want_text, want_image, thoughts, request.get("tools", [])
    )


def _check_seed(config: dict[str, Any]) -> None:
    """generationConfig.seed is an int32."""
    seed = config.get("seed")
    if seed is None:
        return
    if isinstance(seed, bool) or not isinstance(seed, int) or not -INT32_MAX - 1 <= seed <= INT32_MAX:
        raise _bad_value("generation_config.seed", "TYPE_INT32", seed)


def _check_thinking_level(config: dict[str, Any], spec: ModelSpec) -> None:
    """thinkingLevel: a ThinkingLevel name (any case, as Google's own examples write it) the model takes."""
    level = config.get("thinkingConfig", {}).get("thinkingLevel")
    if level is None:
        return
    path = "generation_config.thinking_config.thinking_level"
    if not isinstance(level, str) or level.upper() not in THINKING_LEVELS:
        raise _bad_value(path, "ThinkingConfig.ThinkingLevel", level)
    if level.upper() not in spec.thinking:
        raise invalid(f"* GenerateContentRequest.{path}: Thinking level is not supported for this model.\n")


def _check_safety_settings(settings: list[dict[str, Any]]) -> None:
    """Each SafetySetting: a Gemini harm category, once, with a known threshold."""
    seen: set[str] = set()
    for i, setting in enumerate(settings):
        path = f"safety_settings[{i}]"
        category, threshold = setting.get("category"), setting.get("threshold")
        if category not in HARM_CATEGORIES | PALM_CATEGORIES:
            raise _bad_value(f"{path}.category", "HarmCategory", category)
        if threshold not in HARM_THRESHOLDS:
            raise _bad_value(f"{path}.threshold", "SafetySetting.HarmBlockThreshold", threshold)
        if category not in HARM_CATEGORIES:
            raise invalid(f"* GenerateContentRequest.{path}.category: {category} is not supported.\n")
        if category in seen:
            raise invalid(f"* GenerateContentRequest.{path}: duplicate category {category}.\n")
        seen.add(category)
