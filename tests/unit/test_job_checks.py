"""The checks a job passes before anything is reserved: what each refusal says, in each language."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bot.errors import InputError
from bot.jobs.checks import (
    check_input_count,
    check_search,
    check_shape,
    check_thinking,
    check_upscale_job,
    check_upscale_size,
)
from bot.jobs.spec import JobSpec, RawInput
from bot.providers.base import ModelSpec

MODEL = ModelSpec(
    "flash",
    max_input_images=3,
    aspect_ratios=("1:1", "16:9"),
    resolutions=("1K", "2K"),
    thinking_levels=("low",),
)
PLAIN = ModelSpec("plain", max_input_images=1, aspect_ratios=("1:1",), resolutions=("1K",))


def said(call: Callable[..., None], *args: object, locale: str | None = None) -> str:
    """The reply a member reads for the InputError a check raises."""
    with pytest.raises(InputError) as caught:
        call(*args)
    assert caught.value.message == caught.value.reply_text(None)  # the log reads the English
    return caught.value.reply_text(locale)


def test_too_many_inputs_counts_in_the_right_number() -> None:
    check_input_count(MODEL, 3)
    assert said(check_input_count, MODEL, 4) == "flash takes at most 3 input images; this job has 4"
    assert said(check_input_count, PLAIN, 2) == "plain takes at most 1 input image; this job has 2"
    assert said(check_input_count, PLAIN, 2, locale="es-ES") == (
        "plain admite como máximo 1 imagen de entrada; este trabajo tiene 2"
    )
    assert said(check_input_count, MODEL, 4, locale="es-ES") == (
        "flash admite como máximo 3 imágenes de entrada; este trabajo tiene 4"
    )


def test_a_shape_the_model_cannot_make_names_the_choices() -> None:
    assert (
        said(check_shape, MODEL, JobSpec("imagine", resolution="4K"))
        == "flash does not offer 4K; choose 1K, 2K"
    )
    assert said(check_shape, MODEL, JobSpec("imagine", aspect_ratio="3:2")) == (
        "flash does not support aspect ratio 3:2; choose one of 1:1, 16:9"
    )
    assert said(check_shape, MODEL, JobSpec("imagine", aspect_ratio="3:2"), locale="ja") == (
        "flash はアスペクト比 3:2 に対応していません。1:1, 16:9 から選んでください"
    )
    check_shape(MODEL, JobSpec("imagine", aspect_ratio="auto", resolution="2K"))


def test_thinking_and_search_the_model_lacks() -> None:
    assert said(check_thinking, MODEL, "high") == "flash does not take thinking level high; choose low"
    assert (
        said(check_thinking, PLAIN, "low") == "plain takes no thinking level; leave the thinking option out"
    )
    assert said(check_search, PLAIN, True) == (
        "plain cannot ground its images in Google Search; turn the search option off, or choose a model "
        "that offers it (the search option lists on and off only for those)"
    )
    check_search(PLAIN, None)


def test_an_upscale_too_large_says_what_fits() -> None:
    max_pixels = 16_000_000
    check_upscale_size(1000, 1000, 4, max_pixels)
    assert said(check_upscale_size, 1500, 1500, 4, max_pixels) == (
        "×4 of this 1500×1500 image would make 36 MP, over this bot's 16 MP limit; "
        "the largest factor that fits is ×2. Nothing was charged."
    )
    assert said(check_upscale_size, 3000, 3000, 2, max_pixels) == (
        "×2 of this 3000×3000 image would make 36 MP, over this bot's 16 MP limit; "
        "this image is too large to upscale at all. Nothing was charged."
    )
    assert said(check_upscale_size, 1500, 1500, 4, max_pixels, locale="pt-BR") == (
        "×4 desta imagem de 1500×1500 daria 36 MP, acima do limite de 16 MP deste bot; "
        "o maior fator que cabe é ×2. Nada foi cobrado."
    )


def test_an_upscale_needs_an_image() -> None:
    assert said(check_upscale_job, JobSpec("upscale"), 16_000_000) == "There is no image to upscale"
    assert (
        said(check_upscale_job, JobSpec("upscale"), 16_000_000, locale="ja")
        == "アップスケールする画像がありません"
    )
    check_upscale_job(JobSpec("upscale", inputs=[RawInput(b"png")]), 16_000_000)
