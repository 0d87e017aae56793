"""A provider's failure reaches each member in their own language: the real provider code against the
fake servers, the error worded as the bot's error reply words it (`error_text` with a Discord locale)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import pytest

from bot.errors import (
    BadRequest,
    InputError,
    NoImageReturned,
    ProviderError,
    ProviderUnavailable,
    SafetyBlocked,
)
from bot.providers.base import GenerateRequest, InputImage
from bot.providers.netguard import check_url
from bot.providers.router import Router
from bot.ui.embeds import error_text
from tests.fakes.providers import FakeGemini, FakeTask, Fault

KEY = "gk-l10n-secret"


@pytest.fixture
async def fake() -> AsyncIterator[FakeGemini]:
    async with FakeGemini(api_key=KEY) as server:
        yield server


@pytest.fixture
def gemini(fake: FakeGemini, router_for: Callable[..., Router]) -> Router:
    return router_for({"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY})


async def _failure(router: Router, request: GenerateRequest) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await router.generate(request)
    return caught.value


async def test_a_safety_block_is_explained_in_spanish(gemini: Router, fake: FakeGemini) -> None:
    fake.script(Fault("image_safety", message="No puedo dibujar eso."))
    error = await _failure(gemini, GenerateRequest("a pear"))
    assert isinstance(error, SafetyBlocked)
    assert error_text(error, "es-ES") == (
        "🚫 Bloqueado por los filtros de seguridad",
        "Los filtros de seguridad de google bloquearon la imagen (IMAGE_SAFETY). "
        "El modelo dijo: No puedo dibujar eso.",
    )
    assert error_text(error, "en-US")[1] == (
        "The image was blocked by google's safety filters (IMAGE_SAFETY). "
        "The model said: No puedo dibujar eso."
    )
    assert error.message == error_text(error)[1]  # the log and the command-line tool read English


async def test_a_blocked_prompt_in_portuguese_and_japanese(gemini: Router, fake: FakeGemini) -> None:
    fake.script("prompt_blocked")
    error = await _failure(gemini, GenerateRequest("a pear"))
    assert error_text(error, "pt-BR")[1] == (
        "Os filtros de segurança de google bloquearam seu prompt (PROHIBITED_CONTENT)"
    )
    assert (
        error_text(error, "ja")[1]
        == "プロンプトがgoogleの安全フィルターでブロックされました（PROHIBITED_CONTENT）"
    )


async def test_a_text_answer_instead_of_an_image_in_spanish(gemini: Router, fake: FakeGemini) -> None:
    fake.script(Fault("text_only", message="Prefiero escribir un haiku."))
    error = await _failure(gemini, GenerateRequest("a pear"))
    assert isinstance(error, NoImageReturned)
    assert error_text(error, "es-419") == (
        "🖼️ No se devolvió ninguna imagen",
        "google no devolvió ninguna imagen (STOP). El modelo dijo: Prefiero escribir un haiku.",
    )


async def test_a_broken_answer_gets_a_spanish_sentence_before_its_detail(
    gemini: Router, fake: FakeGemini
) -> None:
    """The service's own failure keeps its detail as it is, after a sentence the member can read."""
    fake.script("html", "html", "html")
    error = await _failure(gemini, GenerateRequest("a pear"))
    assert isinstance(error, ProviderUnavailable)
    title, body = error_text(error, "es-ES")
    assert title == "🛠️ Proveedor no disponible"
    assert body == (
        "El servicio de imágenes no está respondiendo bien en este momento; no se cobró nada. Detalles: "
        f"{error.message}"
    )
    assert "HTML" in error.message and KEY not in body


async def test_a_request_the_model_cannot_take_is_refused_in_spanish(
    gemini: Router, fake: FakeGemini
) -> None:
    ratio = await _failure(
        gemini, GenerateRequest("x", model="gemini-3-pro-image-preview", aspect_ratio="8:1")
    )
    count = await _failure(gemini, GenerateRequest("x", count=9))
    empty = await _failure(gemini, GenerateRequest("   "))
    assert all(isinstance(e, BadRequest) for e in (ratio, count, empty))
    assert error_text(ratio, "es-ES")[1].startswith(
        "gemini-3-pro-image-preview no admite la relación de aspecto 8:1; elige una de estas: 1:1, "
    )
    assert error_text(count, "es-ES")[1] == (
        "gemini-2.5-flash-image genera de 1 a 4 imágenes por solicitud, no 9"
    )
    assert error_text(empty, "es-ES") == (
        "⚠️ Solicitud no aceptada",
        "El prompt está vacío; describe la imagen que quieres",
    )
    assert fake.calls == 0  # refused before anything was sent


async def test_too_many_references_count_in_each_language(gemini: Router) -> None:
    png = InputImage(b"\x89PNG", "image/png")
    error = await _failure(gemini, GenerateRequest("x", images=[png] * 4))
    assert error.message == "gemini-2.5-flash-image accepts at most 3 input images; you gave 4"
    assert error_text(error, "es-ES")[1] == (
        "gemini-2.5-flash-image acepta como máximo 3 imágenes de entrada; diste 4"
    )
    assert (
        error_text(error, "ja")[1]
        == "gemini-2.5-flash-imageに渡せる入力画像は最大3枚です（指定されたのは4枚）"
    )


async def test_a_refused_task_says_why_in_spanish(router_for: Callable[..., Router]) -> None:
    async with FakeTask(api_key=KEY) as fake:
        router = router_for({"name": "vtrix", "kind": "task", "base_url": fake.base_url, "api_key": KEY})
        fake.script(Fault("failed_object", message="Flagged by moderation"))
        error = await _failure(router, GenerateRequest("x"))
    assert isinstance(error, SafetyBlocked)
    assert error.message == "vtrix refused the image: Flagged by moderation (code 005001095)"
    assert (
        error_text(error, "es-ES")[1] == "vtrix rechazó la imagen: Flagged by moderation (código 005001095)"
    )


async def test_an_unknown_model_and_a_private_address_are_refused_in_spanish(gemini: Router) -> None:
    with pytest.raises(InputError) as unknown:
        gemini.candidates(None, "gemini-9-imaginary")
    assert error_text(unknown.value, "es-ES") == (
        "⚠️ Entrada no válida",
        "Ningún proveedor ofrece el modelo 'gemini-9-imaginary'. Disponibles: "
        + ", ".join(sorted({m for _, m in gemini.models()})),
    )
    with pytest.raises(InputError) as private:
        await check_url("http://10.0.0.7/cat.png")
    assert error_text(private.value, "es-ES")[1] == "Rechazado: 10.0.0.7 es una dirección privada o local"
    assert private.value.message == "Refused: 10.0.0.7 is a private or local address"
