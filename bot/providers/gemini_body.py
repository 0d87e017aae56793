"""The Gemini generateContent request body: history, the new user turn, image options, safety and tools."""

from __future__ import annotations

import base64

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


def _inline(image: ImageData, signature: str | None = None) -> JsonDict:
    """An inlineData part, with its thought signature when it had one."""
    part: JsonDict = {"inlineData": {"mimeType": image.mime, "data": base64.b64encode(image.data).decode()}}
    if signature is not None:
        part["thoughtSignature"] = signature
    return part


def _turn_parts(turn: Turn) -> list[JsonDict]:
    """Rebuild a stored turn's parts, model parts with their signatures in their original order."""
    recorded = turn.state.get("parts") if turn.role == "model" else None
    if not recorded:
        parts: list[JsonDict] = [{"text": turn.text}] if turn.text else []
        return parts + [_inline(img) for img in turn.images]
    parts = []
    for entry in recorded:
        signature = entry.get("thoughtSignature")
        if "image" in entry:
            index = int(entry["image"])
            if index < len(turn.images):
                parts.append(_inline(turn.images[index], signature))
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
    """The generateContent request body: history, then the new user turn, then image options."""
    contents = [
        {"role": turn.role, "parts": parts} for turn in request.history if (parts := _turn_parts(turn))
    ]
    user_parts: list[JsonDict] = [{"text": request.prompt}]
    user_parts += [_inline(img) for i in request.images if (img := i.as_image()) is not None]
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
    body: JsonDict = {"contents": contents, "generationConfig": config}
    if threshold := THRESHOLDS.get(request.safety):  # "default": Google's own thresholds
        body["safetySettings"] = [{"category": c, "threshold": threshold} for c in HARM_CATEGORIES]
    if request.search and spec.grounding:  # a model without grounding answers a search with a 400
        body["tools"] = [search_tool(spec)]
    return body


def seeded(body: JsonDict, count: int) -> list[JsonDict]:
    """One body per image: with a seed, the n-th image's is seed + n (one seed would repeat one image)."""
    config = body["generationConfig"]
    if "seed" not in config:
        return [body] * count
    seeds = ((config["seed"] + n) % (MAX_SEED + 1) for n in range(count))
    return [{**body, "generationConfig": {**config, "seed": seed}} for seed in seeds]
