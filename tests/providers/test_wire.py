"""Typed wire formats: each provider's answers parse into its models, and a bad shape is a clear BadResponse.

Bad and unusual answers come from a small scripted host on 127.0.0.1 (the fakes only send well-formed
answers); the fakes' own answers are fetched over HTTP and read with the interfaces' models.
"""

from __future__ import annotations

import base64
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web

from bot.errors import OutOfCredits, ProviderUnavailable, RateLimited
from bot.providers import gemini, gemini_wire, nbpro, openai_images, task
from bot.providers.base import GenerateRequest
from bot.providers.router import Router
from bot.providers.wire import BadResponse, Loose, WireModel, parse, parse_error_body
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeNBPro, FakeOpenAIImages, FakeTask, Fault

PNG = make_image(8, 8, "PNG", color=(10, 20, 30))
B64 = base64.b64encode(PNG).decode()
GEMINI_PATH = "/v1beta/models/gemini-2.5-flash-image:generateContent"
OPENAI_PATH = "/v1/images/generations"
CREATE, POLL = "/model/v1/generation", "/model/v1/generation/task/t1"
M = TypeVar("M", bound=WireModel)


class Host:
    """A provider host answering each path with the JSON bodies queued for it (the last one repeats)."""

    def __init__(self) -> None:
        self.answers: dict[str, deque[Any]] = {}
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def answer(self, path: str, *bodies: Any) -> Host:
        """Queue answers for a path."""
        self.answers.setdefault(path, deque()).extend(bodies)
        return self

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.path == "/img.png":
            return web.Response(body=PNG, content_type="image/png")
        queued = self.answers[request.path]
        return web.json_response(queued.popleft() if len(queued) > 1 else queued[0])

    async def __aenter__(self) -> Host:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.base_url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()


@pytest.fixture
async def host() -> AsyncIterator[Host]:
    async with Host() as server:
        yield server


KINDS = {"gemini": "google", "openai-images": "relay", "nbpro": "nbpro", "task": "vtrix"}


def router(router_for: Callable[..., Router], host: Host, kind: str) -> Router:
    """A router with one provider of this kind on the scripted host."""
    entry: dict[str, Any] = {"name": KINDS[kind], "kind": kind, "base_url": host.base_url, "api_key": "k"}
    if kind == "openai-images":
        entry["models"] = ["nano-banana"]
    return router_for(entry)


# --- the shared parse step ---------------------------------------------------------------------------


class _Thing(WireModel):
    name: str
    size: Loose[int] = None


class _Loose(WireModel):
    size: Loose[int] = None


def test_bad_response_is_a_provider_unavailable_with_its_own_label() -> None:
    assert issubclass(BadResponse, ProviderUnavailable)
    assert BadResponse.metric_label == "bad_response" and "bad answer" in str(BadResponse.title)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"size": 1}, "p sent an answer the bot cannot use (/name is missing)"),
        (
            {"name": {"sk-secret-0123456789": 1}},
            "p sent an answer the bot cannot use (/name has the wrong type)",
        ),
        (["not", "an", "object"], "p sent an unexpected answer"),
        (None, "p sent an unexpected answer"),
    ],
)
def test_parse_names_the_field_and_never_the_value(data: Any, message: str) -> None:
    with pytest.raises(BadResponse) as caught:
        parse(_Thing, data, "p")
    assert caught.value.message == message and caught.value.provider == "p"


def test_loose_fields_read_as_absent_and_unknown_fields_are_ignored() -> None:
    thing = parse(_Thing, {"name": 7, "size": "big", "colour": "red"}, "p")
    assert thing == _Thing(name="7", size=None)
    assert parse_error_body(_Loose, "<html>") == parse_error_body(_Loose, {"size": "big"}) == _Loose()


def test_validation_keeps_big_base64_strings_as_they_are() -> None:
    data = "A" * 8_000_000
    answer = parse(openai_images._ImagesResponse, {"data": [{"b64_json": data}]}, "p")
    assert answer.data is not None and answer.data[0].b64_json is data  # no copy: cheap on the loop


# --- answers missing a required field ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "answers", "message"),
    [
        (
            "gemini",
            {
                GEMINI_PATH: [
                    {"candidates": [{"content": {"parts": [{"inlineData": {"mimeType": "image/png"}}]}}]}
                ]
            },
            "google sent an answer the bot cannot use "
            "(/candidates/0/content/parts/0/inlineData/data is missing)",
        ),
        (
            "openai-images",
            {OPENAI_PATH: [{"created": 1, "data": [{"revised_prompt": "a cat"}]}]},
            "relay sent an answer the bot cannot use (/data/0/url or b64_json is missing)",
        ),
        (
            "nbpro",
            {nbpro.PATH: [{"model": "nano-banana-2-1k", "images": [{"width": 8}]}]},
            "nbpro sent an answer the bot cannot use (/images/0/url is missing)",
        ),
        (
            "task",
            {CREATE: [{"id": "t1", "status": "in_progress"}], POLL: [{"id": "t1", "progress": 0.5}]},
            "vtrix sent an answer the bot cannot use (/status is missing)",
        ),
        (
            "task",
            {
                CREATE: [{"id": "t1", "status": "in_progress"}],
                POLL: [{"status": "completed", "output": [{"content": [{"type": "image"}]}]}],
            },
            "vtrix sent an answer the bot cannot use (/output/0/content/0/url is missing)",
        ),
        (
            "gemini",
            {GEMINI_PATH: [{"candidates": {"0": "not a list"}}]},
            "google sent an answer the bot cannot use (/candidates has the wrong type)",
        ),
    ],
)
async def test_a_missing_field_is_a_clear_bad_response(
    host: Host, router_for: Callable[..., Router], kind: str, answers: dict[str, list[Any]], message: str
) -> None:
    for path, bodies in answers.items():
        host.answer(path, *bodies)
    with pytest.raises(BadResponse) as caught:
        await router(router_for, host, kind).generate(GenerateRequest("a cat"))
    assert caught.value.message == message


# --- answers with fields nobody documented -------------------------------------------------------------


def image_answers(kind: str, base_url: str) -> dict[str, list[Any]]:
    """A successful answer of each format, padded with fields the interfaces do not know."""
    url = f"{base_url}/img.png"
    unknown = {"surprise": {"nested": [1, 2]}, "requestId": "r-1"}
    if kind == "gemini":
        part = {"inlineData": {"mimeType": "image/png", "data": B64, "displayName": "x"}, "videoMetadata": {}}
        rating = {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"}
        candidate = {"content": {"parts": [part]}, "groundingMetadata": {}, "safetyRatings": [rating]}
        answer = {"candidates": [candidate], "usageMetadata": {"serviceTier": "standard"}, **unknown}
        return {GEMINI_PATH: [answer]}
    if kind == "openai-images":
        item = {"b64_json": B64, "url": None, "revised_prompt": None, "content_filter": "pass"}
        return {OPENAI_PATH: [{"created": 1, "background": "opaque", "data": [item], "usage": {}, **unknown}]}
    if kind == "nbpro":
        return {nbpro.PATH: [{"model": "nano-banana-2-1k", "images": [{"url": url, "width": 8}], **unknown}]}
    done = {"id": "t1", "status": "completed", "metadata": {"in_queue_at": 1}, **unknown}
    done["output"] = [{"content": [{"type": "image", "url": url, "img_id": "i"}], "index": 0}]
    return {CREATE: [{"id": "t1", "status": "in_progress", "created_at": 1}], POLL: [done]}


@pytest.mark.parametrize("kind", list(KINDS))
async def test_unknown_fields_are_ignored(host: Host, router_for: Callable[..., Router], kind: str) -> None:
    for path, bodies in image_answers(kind, host.base_url).items():
        host.answer(path, *bodies)
    result = await router(router_for, host, kind).generate(GenerateRequest("a cat"))
    assert [image.data for image in result.images] == [PNG]


async def test_an_empty_error_object_on_a_pending_task_is_no_failure(
    host: Host, router_for: Callable[..., Router]
) -> None:
    answers = image_answers("task", host.base_url)
    host.answer(CREATE, *answers[CREATE])
    host.answer(POLL, {"id": "t1", "status": "in_progress", "error": {}}, *answers[POLL])
    result = await router(router_for, host, "task").generate(GenerateRequest("a cat"))
    assert result.state == {"task_id": "t1"}


# --- error bodies: typed, and never an error of their own -------------------------------------------------


@pytest.mark.parametrize("body", [None, "<html>", [], [1], {"error": 5}, {"error": {"details": "x"}}])
@pytest.mark.parametrize("module", [gemini, openai_images, nbpro, task])
def test_any_error_body_is_classified_by_its_status(module: Any, body: Any) -> None:
    error = module.map_error("p")(503, body, {})
    assert type(error) is ProviderUnavailable and error.message.endswith("(HTTP 503)")


def test_gemini_error_details_are_read_past_entries_that_are_not_objects() -> None:
    retry = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s", "extra": True}
    body = [{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "details": ["noise", retry]}}]
    error = gemini.map_error("g")(429, body, {})
    assert isinstance(error, RateLimited) and error.retry_after == 12
    daily = {"@type": "QuotaFailure", "violations": [7, {"quotaId": "GenerateRequestsPerDayPerProject"}]}
    assert isinstance(gemini.map_error("g")(429, {"error": {"details": [daily]}}, {}), OutOfCredits)


def test_task_error_codes_are_read_at_every_depth() -> None:
    nested = {"error": {"error_message": "Insufficient balance", "error_code": 40203}}
    assert isinstance(task.map_error("v")(403, nested, {}), OutOfCredits)
    assert task._message(parse_error_body(task._ErrorBody, {"error": "busy", "error_code": "40201"})) == (
        "busy",
        None,  # a code that is not a number is no code
    )


# --- the fakes' own answers ------------------------------------------------------------------------------


async def fetch(session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> tuple[int, Any]:
    """Status and decoded JSON of one request to a fake."""
    async with session.request(method, url, **kwargs) as resp:
        return resp.status, await resp.json(content_type=None)


async def read(session: aiohttp.ClientSession, model: type[M], method: str, url: str, **kwargs: Any) -> M:
    """One answer of a fake, read with an interface's model."""
    return parse(model, (await fetch(session, method, url, **kwargs))[1], "fake")


async def test_the_gemini_fake_answers_parse(session: aiohttp.ClientSession) -> None:
    async with FakeGemini(api_key="k") as fake:
        url = f"{fake.base_url}/v1beta/models/gemini-3-pro-image-preview:generateContent"
        config = {"responseModalities": ["TEXT", "IMAGE"], "thinkingConfig": {"includeThoughts": True}}
        body = {"contents": [{"role": "user", "parts": [{"text": "a cat"}]}], "generationConfig": config}
        post = {"json": body, "headers": {"x-goog-api-key": "k"}}
        answer = await read(session, gemini_wire.GenerateContentResponse, "POST", url, **post)
        [candidate] = answer.candidates or []
        assert candidate.content is not None and candidate.finish_reason == "STOP"
        parts = candidate.content.parts or []
        assert [part.thought for part in parts] == [True, True, None]  # thought text, thought image, result
        assert parts[-1].inline_data is not None and parts[-1].inline_data.mime_type == "image/jpeg"
        assert parts[-1].thought_signature == fake.signatures[-1]
        usage = answer.usage_metadata
        assert usage is not None and usage.thoughts_token_count == 215 and usage.total_token_count
        assert answer.model_version == "gemini-3-pro-image-preview"

        fake.script("prompt_blocked", "image_safety", Fault("rate_limited", retry_after=0.3))
        blocked = await read(session, gemini_wire.GenerateContentResponse, "POST", url, **post)
        assert blocked.candidates is None and blocked.prompt_feedback is not None
        assert blocked.prompt_feedback.block_reason == "PROHIBITED_CONTENT"
        [candidate] = (
            await read(session, gemini_wire.GenerateContentResponse, "POST", url, **post)
        ).candidates or []
        assert candidate.finish_reason == "IMAGE_SAFETY" and "Prohibited" in (candidate.finish_message or "")
        status, data = await fetch(session, "POST", url, **post)
        error = parse_error_body(gemini_wire.ErrorBody, data).error
        assert (
            status == 429 and error is not None and (error.code, error.status) == (429, "RESOURCE_EXHAUSTED")
        )
        kinds = {(d.kind or "").rpartition(".")[2]: d for d in error.known_details}
        assert kinds["RetryInfo"].retry_delay == "0.3s"
        quotas = [v.quota_id for v in kinds["QuotaFailure"].violations or [] if v]
        assert quotas == ["GenerateRequestsPerMinutePerProjectPerModel-FreeTier"]

        _, data = await fetch(session, "POST", url, json=body, headers={"x-goog-api-key": "wrong"})
        error = parse_error_body(gemini_wire.ErrorBody, data).error
        assert error is not None and "API_KEY_INVALID" in {d.reason for d in error.known_details}
        info = await read(session, gemini_wire.ModelInfo, "GET", url.removesuffix(":generateContent"), **post)
        assert info.display_name == "Nano Banana (gemini-3-pro-image-preview)"


async def test_the_openai_style_fake_answers_parse(session: aiohttp.ClientSession) -> None:
    async with FakeOpenAIImages(api_key="k") as relay, FakeOpenAIImages(flavor="aikit") as aikit:
        post = {
            "json": {"model": "nano-banana", "prompt": "a cat", "n": 2},
            "headers": {"Authorization": "Bearer k"},
        }
        answer = await read(
            session, openai_images._ImagesResponse, "POST", relay.base_url + OPENAI_PATH, **post
        )
        assert [(i.url or "").startswith(relay.base_url) for i in answer.data or []] == [True, True]
        assert {i.revised_prompt for i in answer.data or []} == {"a cat"}

        form = aiohttp.FormData({"upscale_factor": "x2", "response_format": "b64_json"})
        form.add_field("image", PNG, filename="a.png", content_type="image/png")
        url = aikit.base_url + "/v1/images/upscale"
        [item] = (await read(session, openai_images._ImagesResponse, "POST", url, data=form)).data or []
        assert (item.b64_json or "").startswith("data:image/jpeg;base64,") and item.url is None

        relay.script("moderation_blocked")
        _, data = await fetch(session, "POST", relay.base_url + OPENAI_PATH, **post)
        message, kind, code = parse_error_body(openai_images._ErrorBody, data).fields()
        assert (kind, code) == ("image_generation_user_error", "moderation_blocked") and "safety" in message
        models = await read(session, openai_images._ModelList, "GET", aikit.base_url + "/v1/models")
        assert [m.id for m in models.data or [] if m] == ["nano-banana", "imagen-4.0-upscale-preview"]


async def test_the_nbpro_fake_answers_parse(session: aiohttp.ClientSession) -> None:
    async with FakeNBPro(api_key="k") as fake:
        url, prompt = fake.base_url + nbpro.PATH, {"prompt": "a cat"}
        answer = await read(
            session, nbpro._Answer, "POST", url, json=prompt, headers={"Authorization": "Bearer k"}
        )
        assert answer.model == "nano-banana-2-1k"
        assert [image.url.startswith(fake.base_url) for image in answer.images or []] == [True]
        _, data = await fetch(session, "POST", url, json=prompt, headers={"Authorization": "Bearer x"})
        assert parse_error_body(nbpro._ErrorBody, data).error == "Invalid API key"


async def test_the_task_fake_answers_parse(session: aiohttp.ClientSession) -> None:
    async with FakeTask(api_key="k") as fake:
        auth = {"Authorization": "Bearer k"}
        request = {"model": "nano_banana_2", "input": [{"params": {"prompt": "a cat"}}]}
        create = {"json": request, "headers": auth}
        poll = f"{fake.base_url}/model/v1/generation/task/{{}}"
        fake.polls_to_complete = 1
        first = await read(session, task._Created, "POST", fake.base_url + CREATE, **create)
        assert first.state == "in_progress" and not first.has_error
        assert (
            await read(session, task._Task, "GET", poll.format(first.id), headers=auth)
        ).state not in task.DONE
        done = await read(session, task._Task, "GET", poll.format(first.id), headers=auth)
        [block] = done.output or []
        [item] = block.content or []
        assert (
            done.state == "completed" and item.type == "image" and (item.url or "").startswith(fake.base_url)
        )
        assert done.model == "nano_banana_2" and (done.usage or {}).get("completion_tokens") == 1290

        fake.polls_to_complete = 0
        fake.script(Fault("failed_object", message="nope"), "failed_numeric", "out_of_credits")
        for code, said in [("005001095", "nope"), ("5001096", None)]:
            created = await read(session, task._Created, "POST", fake.base_url + CREATE, **create)
            failed = await read(session, task._Task, "GET", poll.format(created.id), headers=auth)
            assert failed.has_error and isinstance(failed.error, task._Failure)
            assert (failed.error.code, failed.error.error_message) == (code, said)
        status, data = await fetch(session, "POST", fake.base_url + CREATE, **create)
        assert status == 402
        assert task._message(parse_error_body(task._ErrorBody, data)) == ("Insufficient credits", 40201)


async def test_the_interfaces_read_the_fakes(router_for: Callable[..., Router]) -> None:
    async with FakeGemini() as google, FakeNBPro() as pro, FakeTask() as vtrix:
        usage = {"google": "totalTokenCount", "vtrix": "total_tokens"}
        for name, kind, fake in [
            ("google", "gemini", google),
            ("nbpro", "nbpro", pro),
            ("vtrix", "task", vtrix),
        ]:
            router = router_for({"name": name, "kind": kind, "base_url": fake.base_url})
            result = await router.generate(GenerateRequest("a cat"))
            assert len(result.images) == 1 and result.provider == name
            assert (usage[name] in result.usage) if name in usage else result.usage == {}
