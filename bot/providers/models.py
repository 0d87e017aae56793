"""What each known model accepts, so limits are enforced before anything is sent."""

from __future__ import annotations

from dataclasses import replace

from bot.providers.base import ModelSpec

STANDARD_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTENDED_RATIOS = (*STANDARD_RATIOS, "1:4", "4:1", "1:8", "8:1")
NBPRO_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")
ALL_RESOLUTIONS = ("0.5K", "1K", "2K", "4K")
MB = 1024 * 1024

# Where each fact comes from. Input counts: Vertex AI's model cards ("Maximum images per prompt":
# 3 for 2.5 Flash Image, 14 for 3.1 Flash Image) and the Gemini API image guide (14 for 3 Pro Image).
# Ratios and sizes: the google-genai SDK's ImageConfig and changelog (ten standard ratios for all;
# 1:4, 4:1, 1:8, 8:1 and the "512" size added for 3.1 Flash Image only; 2.5 Flash Image is 1K only).
# Grounding: the Gemini API image guide names Google Search grounding for 3 Pro Image ("Tools (Pro
# only)", written before 3.1 existed); 3.1 Flash Image is taken to have it too, with web and image
# search (the SDK's GoogleSearch.search_types), though no Google page we hold says so for it yet.
# Thinking levels (`thinkingConfig.thinkingLevel`): the Gemini 3 guide gives Gemini 3 Pro "low" and
# "high" only, and Pro Image always thinks (no "minimal"); 3.1 Flash Image takes "minimal" (its
# default) and "high" (js-genai#1544; Google's image guide). 2.5 Flash Image has no thinking level.
_GEMINI_FLASH = ModelSpec("gemini-2.5-flash-image", 3, STANDARD_RATIOS, ("1K",), multi_turn=True)
_GEMINI_PRO = ModelSpec(
    "gemini-3-pro-image-preview",
    14,
    STANDARD_RATIOS,
    ("1K", "2K", "4K"),
    multi_turn=True,
    grounding=True,
    thinking_levels=("low", "high"),
)
_GEMINI_31 = ModelSpec(
    "gemini-3.1-flash-image-preview",
    14,
    EXTENDED_RATIOS,
    ALL_RESOLUTIONS,
    multi_turn=True,
    grounding=True,
    thinking_levels=("minimal", "high"),
)
# Gemini 3.1 Flash Lite Image: 1K only and no grounding are the limits the bot's specification
# gives it; no Google document we hold covers this model, so its input count and ratios are the
# conservative ones every unknown Gemini model gets (3 inputs, the ten standard ratios).
_GEMINI_31_LITE = ModelSpec(
    "gemini-3.1-flash-lite-image-preview", 3, STANDARD_RATIOS, ("1K",), multi_turn=True
)

KNOWN_MODELS: dict[str, ModelSpec] = {
    "gemini-2.5-flash-image": _GEMINI_FLASH,
    "gemini-2.5-flash-image-preview": replace(_GEMINI_FLASH, name="gemini-2.5-flash-image-preview"),
    "gemini-3-pro-image-preview": _GEMINI_PRO,
    "gemini-3-pro-image": replace(_GEMINI_PRO, name="gemini-3-pro-image"),
    "nano-banana-pro-preview": replace(_GEMINI_PRO, name="nano-banana-pro-preview"),
    "gemini-3.1-flash-image-preview": _GEMINI_31,
    "gemini-3.1-flash-image": replace(_GEMINI_31, name="gemini-3.1-flash-image"),
    "gemini-3.1-flash-lite-image-preview": _GEMINI_31_LITE,
    "gemini-3.1-flash-lite-image": replace(_GEMINI_31_LITE, name="gemini-3.1-flash-lite-image"),
    # OpenAI-style relays and the aikit worker (the OpenAI Images API).
    "nano-banana": ModelSpec("nano-banana", 4, STANDARD_RATIOS, ("1K",)),
    "nano-banana-2": ModelSpec("nano-banana-2", 4, STANDARD_RATIOS, ("1K", "2K", "4K")),
    "nano-banana-hd": ModelSpec("nano-banana-hd", 4, STANDARD_RATIOS, ("4K",)),
    # nano-banana-pro.net's generate API: the server picks the model from the size.
    "nano-banana-pro": ModelSpec(
        "nano-banana-pro",
        14,
        NBPRO_RATIOS,
        ("1K", "2K", "4K"),
        max_input_bytes=int(2.5 * MB),
    ),
    # Vtrix task API: URL inputs only, at most 3.
    "nano_banana_2": ModelSpec(
        "nano_banana_2",
        3,
        EXTENDED_RATIOS,
        ALL_RESOLUTIONS,
        max_prompt_chars=2500,
        needs_urls=True,
    ),
}

#: What a model the bot does not know may be asked for: 1K, 3 references, the standard ratios, no
#: grounding; never a bigger model's limits, so it is never offered a size, a reference count or a
#: search it may not have. A provider entry's `max_input_images`, `resolutions` and `aspect_ratios`
#: widen them.
CONSERVATIVE = ModelSpec("?", 3, STANDARD_RATIOS, ("1K",))

#: Limits assumed for a model id we do not know, by provider kind. nano-banana-pro.net and the task
#: API serve one model family each, so their documented limits hold for any id they are given.
KIND_FALLBACK: dict[str, ModelSpec] = {
    "gemini": replace(CONSERVATIVE, multi_turn=True),  # any generateContent model takes a conversation
    "openai-images": CONSERVATIVE,
    "nbpro": replace(KNOWN_MODELS["nano-banana-pro"], name="?"),
    "task": replace(KNOWN_MODELS["nano_banana_2"], name="?"),
    "local": ModelSpec("?", 1, STANDARD_RATIOS, ("1K",), max_count=1),
}


def is_known(model: str) -> bool:
    """Whether the bot knows this model's limits (else it applies its kind's fallback)."""
    return model in KNOWN_MODELS


def spec_for(
    kind: str,
    model: str,
    *,
    max_input_images: int | None = None,
    aspect_ratios: tuple[str, ...] | None = None,
    resolutions: tuple[str, ...] | None = None,
) -> ModelSpec:
    """The model's limits, with a provider entry's overrides applied."""
    spec = KNOWN_MODELS.get(model) or replace(KIND_FALLBACK[kind], name=model)
    if max_input_images is not None:
        spec = replace(spec, max_input_images=max_input_images)
    if aspect_ratios:
        spec = replace(spec, aspect_ratios=aspect_ratios)
    if resolutions:
        spec = replace(spec, resolutions=resolutions)
    return spec
