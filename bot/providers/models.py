"""What each known model accepts, so limits are enforced before anything is sent."""

from __future__ import annotations

from dataclasses import replace

from bot.providers.base import ModelSpec

STANDARD_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTENDED_RATIOS = (*STANDARD_RATIOS, "1:4", "4:1", "1:8", "8:1")
NBPRO_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "9:16", "16:9", "21:9")
ALL_RESOLUTIONS = ("0.5K", "1K", "2K", "4K")
MB = 1024 * 1024

_GEMINI_FLASH = ModelSpec("gemini-2.5-flash-image", 3, STANDARD_RATIOS, ("1K",), multi_turn=True)
_GEMINI_PRO = ModelSpec(
    "gemini-3-pro-image-preview", 14, STANDARD_RATIOS, ("1K", "2K", "4K"), multi_turn=True
)
_GEMINI_31 = ModelSpec(
    "gemini-3.1-flash-image-preview", 14, EXTENDED_RATIOS, ALL_RESOLUTIONS, multi_turn=True
)

KNOWN_MODELS: dict[str, ModelSpec] = {
    "gemini-2.5-flash-image": _GEMINI_FLASH,
    "gemini-2.5-flash-image-preview": replace(_GEMINI_FLASH, name="gemini-2.5-flash-image-preview"),
    "gemini-3-pro-image-preview": _GEMINI_PRO,
    "gemini-3-pro-image": replace(_GEMINI_PRO, name="gemini-3-pro-image"),
    "nano-banana-pro-preview": replace(_GEMINI_PRO, name="nano-banana-pro-preview"),
    "gemini-3.1-flash-image-preview": _GEMINI_31,
    "gemini-3.1-flash-image": replace(_GEMINI_31, name="gemini-3.1-flash-image"),
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

#: Limits assumed for a model id we do not know, by provider kind.
KIND_FALLBACK: dict[str, ModelSpec] = {
    "gemini": replace(_GEMINI_PRO, name="?"),
    "openai-images": ModelSpec("?", 4, STANDARD_RATIOS, ("1K", "2K", "4K")),
    "nbpro": replace(KNOWN_MODELS["nano-banana-pro"], name="?"),
    "task": replace(KNOWN_MODELS["nano_banana_2"], name="?"),
    "local": ModelSpec("?", 1, STANDARD_RATIOS, ("1K",), max_count=1),
}


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
