"""The model catalogue: known models' limits, and the conservative limits of a model the bot does not know."""

from __future__ import annotations

import pytest

from bot.providers.listing import Row, looks_like_images, table
from bot.providers.models import EXTENDED_RATIOS, KNOWN_MODELS, STANDARD_RATIOS, is_known, spec_for

LITE_IDS = ("gemini-3.1-flash-lite-image-preview", "gemini-3.1-flash-lite-image")


@pytest.mark.parametrize("model", LITE_IDS)
def test_flash_lite_image_is_1k_only_without_grounding(model: str) -> None:
    spec = spec_for("gemini", model)
    assert is_known(model) and spec.name == model
    assert spec.resolutions == ("1K",)
    assert spec.max_input_images == 3
    assert spec.aspect_ratios == STANDARD_RATIOS
    assert not spec.grounding


@pytest.mark.parametrize("model", ["gemini-4-flash-image-preview", "gemini-3.5-pro-image"])
def test_an_unknown_gemini_model_gets_conservative_limits_not_pros(model: str) -> None:
    spec = spec_for("gemini", model)
    pro = KNOWN_MODELS["gemini-3-pro-image-preview"]
    assert not is_known(model) and spec.name == model
    assert (spec.resolutions, spec.max_input_images, spec.grounding) == (("1K",), 3, False)
    assert spec.aspect_ratios == STANDARD_RATIOS
    assert spec.resolutions != pro.resolutions and spec.max_input_images < pro.max_input_images
    assert spec.multi_turn  # any generateContent model takes a conversation


def test_an_unknown_openai_style_model_is_conservative_too() -> None:
    spec = spec_for("openai-images", "some-relay-image-model")
    assert (spec.resolutions, spec.max_input_images, spec.grounding) == (("1K",), 3, False)


def test_a_provider_entry_widens_an_unknown_models_limits() -> None:
    spec = spec_for("gemini", "gemini-4-flash-image", max_input_images=10, resolutions=("1K", "2K"))
    assert (spec.max_input_images, spec.resolutions) == (10, ("1K", "2K"))


@pytest.mark.parametrize(
    ("model", "grounding"),
    [
        ("gemini-3-pro-image-preview", True),
        ("gemini-3-pro-image", True),
        ("nano-banana-pro-preview", True),
        ("gemini-3.1-flash-image-preview", True),
        ("gemini-3.1-flash-image", True),
        ("gemini-2.5-flash-image", False),
        ("gemini-3.1-flash-lite-image-preview", False),
        ("nano-banana-2", False),
        ("nano_banana_2", False),
    ],
)
def test_grounding_only_where_the_model_has_it(model: str, grounding: bool) -> None:
    assert KNOWN_MODELS[model].grounding is grounding


def test_flash_31_keeps_its_extended_ratios_and_sizes() -> None:
    spec = spec_for("gemini", "gemini-3.1-flash-image-preview")
    assert spec.aspect_ratios == EXTENDED_RATIOS and spec.resolutions == ("0.5K", "1K", "2K", "4K")


@pytest.mark.parametrize(
    ("model", "images"),
    [("gemini-9-image", True), ("nano-banana-pro-preview", True), ("imagen-4.0", True), ("gpt-4o", False)],
)
def test_image_models_are_told_from_others_by_name(model: str, images: bool) -> None:
    assert looks_like_images(model) is images


def test_table_aligns_its_columns() -> None:
    rows = [
        Row("google", "gemini-3.1-flash-lite-image-preview", True, 3, ("1K",), ("1:1", "16:9"), False),
        Row("relay", "nano-banana-2", True, 4, ("1K", "2K"), ("1:1",), False, "configured"),
    ]
    header, first, second = table(rows).splitlines()
    assert header.split() == [
        "PROVIDER",
        "MODEL",
        "KNOWN",
        "INPUTS",
        "RESOLUTIONS",
        "RATIOS",
        "GROUNDING",
        "NOTE",
    ]
    assert first.split() == [
        "google",
        "gemini-3.1-flash-lite-image-preview",
        "yes",
        "3",
        "1K",
        "1:1,16:9",
        "no",
    ]
    assert second.index("nano-banana-2") == first.index("gemini") == header.index("MODEL")
    assert second.endswith("configured")
