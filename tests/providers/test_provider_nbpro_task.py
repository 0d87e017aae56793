"""nano-banana-pro.net and the task-polling API against fakes over real HTTP."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Callable

import pytest
from PIL import Image

from bot.errors import (
    AuthFailed,
    BadRequest,
    OutOfCredits,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from bot.providers.base import GenerateRequest, ImageData, InputImage
from bot.providers.router import Router
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeNBPro, FakeTask, Fault

KEY = "sk-nbpro-secret"
TASK_KEY = "vtrix-secret"


@pytest.fixture
async def nbpro() -> AsyncIterator[FakeNBPro]:
    async with FakeNBPro(api_key=KEY) as server:
        yield server


@pytest.fixture
async def task() -> AsyncIterator[FakeTask]:
    async with FakeTask(api_key=TASK_KEY) as server:
        yield server


@pytest.fixture
def nb(nbpro: FakeNBPro, router_for: Callable[..., Router]) -> Router:
    return router_for({"name": "nbpro", "kind": "nbpro", "base_url": nbpro.base_url, "api_key": KEY})


@pytest.fixture
def tk(task: FakeTask, router_for: Callable[..., Router]) -> Router:
    return router_for({"name": "vtrix", "kind": "task", "base_url": task.base_url, "api_key": TASK_KEY})


def dims(image: ImageData) -> tuple[int, int]:
    with Image.open(io.BytesIO(image.data)) as im:
        return im.size


# --- nano-banana-pro.net -------------------------------------------------------------------------


async def test_nbpro_json_generate(nb: Router, nbpro: FakeNBPro) -> None:
    result = await nb.generate(GenerateRequest("a garden", aspect_ratio="21:9", resolution="2K"))
    w, h = dims(result.images[0])
    assert w / h == pytest.approx(21 / 9, rel=0.03)
    call = nbpro.requests[0]
    assert call.path == "/api/ai/nano-banana/generate"
    assert call.headers["Authorization"] == f"Bearer {KEY}"
    assert call.json == {"prompt": "a garden", "size": "2k", "aspectRatio": "21:9"}
    assert result.model == "nano-banana-2-2k"


async def test_nbpro_multipart_upload(nb: Router, nbpro: FakeNBPro) -> None:
    ref = make_image(120, 80, "JPEG", color=(4, 4, 4))
    await nb.generate(GenerateRequest("vintage", images=[InputImage(ref, "image/jpeg")]))
    call = nbpro.requests[0]
    assert call.form["prompt"] == ["vintage"] and call.form["size"] == ["1k"]
    assert [(f[0], f[3]) for f in call.files] == [("image", ref)]


async def test_nbpro_refuses_ratio_it_lacks(nb: Router, nbpro: FakeNBPro) -> None:
    with pytest.raises(BadRequest, match="4:5"):
        await nb.generate(GenerateRequest("x", aspect_ratio="4:5"))
    assert nbpro.calls == 0


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        ("out_of_credits", OutOfCredits),
        ("bad_key", AuthFailed),
        ("url_404", ProviderUnavailable),
        ("malformed", ProviderUnavailable),
        ("html", ProviderUnavailable),
    ],
)
async def test_nbpro_failures(nb: Router, nbpro: FakeNBPro, fault: str, error: type[Exception]) -> None:
    nbpro.script(fault)
    with pytest.raises(error):
        await nb.generate(GenerateRequest("x"))


async def test_nbpro_500_retried_then_success(nb: Router, nbpro: FakeNBPro) -> None:
    nbpro.script("server_error")
    assert (await nb.generate(GenerateRequest("x"))).images
    assert nbpro.calls == 2


async def test_nbpro_500_exhausted(nb: Router, nbpro: FakeNBPro) -> None:
    nbpro.script(*["server_error"] * 3)
    with pytest.raises(ProviderUnavailable, match="failed"):
        await nb.generate(GenerateRequest("x"))


async def test_nbpro_wrong_key(nbpro: FakeNBPro, router_for: Callable[..., Router]) -> None:
    router = router_for({"name": "n", "kind": "nbpro", "base_url": nbpro.base_url, "api_key": "sk-bad"})
    with pytest.raises(AuthFailed):
        await router.generate(GenerateRequest("x"))
    assert (await _check_fails(router)) == "AuthFailed"


async def _check_fails(router: Router) -> str:
    try:
        await router.providers[0].check()
    except Exception as e:
        return type(e).__name__
    return "ok"


async def test_nbpro_check_accepts_key(nb: Router, nbpro: FakeNBPro) -> None:
    assert (await nb.providers[0].check()).startswith("ok")
    assert nbpro.calls <= 1


# --- task API ------------------------------------------------------------------------------------


async def test_task_create_then_poll(tk: Router, task: FakeTask) -> None:
    task.polls_to_complete = 3
    result = await tk.generate(
        GenerateRequest(
            "a red apple",
            aspect_ratio="4:1",
            resolution="0.5K",
            images=[InputImage(url="http://127.0.0.1:9/ref.png", name="ref.png")],
        )
    )
    w, h = dims(result.images[0])
    assert w / h == pytest.approx(4, rel=0.05)
    create = task.requests[0]
    assert create.path == "/model/v1/generation"
    assert create.json == {
        "model": "nano_banana_2",
        "input": [
            {
                "params": {
                    "prompt": "a red apple",
                    "image_urls": ["http://127.0.0.1:9/ref.png"],
                    "aspect_ratio": "4:1",
                    "resolution": "0.5K",
                }
            }
        ],
    }
    polls = [r for r in task.requests if r.path.startswith("/model/v1/generation/task/")]
    assert len(polls) == 4 and task.creates == 1


async def test_task_completed_on_create(tk: Router, task: FakeTask) -> None:
    task.script("completed_on_create")
    assert (await tk.generate(GenerateRequest("x"))).images
    assert not [r for r in task.requests if "/task/" in r.path]


async def test_task_needs_url_inputs(tk: Router, task: FakeTask) -> None:
    png = make_image(10, 10, "PNG", color=(0, 0, 0))
    with pytest.raises(BadRequest, match="URL"):
        await tk.generate(GenerateRequest("x", images=[InputImage(png, "image/png", name="cat.png")]))
    assert task.creates == 0


async def test_task_prompt_limit(tk: Router, task: FakeTask) -> None:
    with pytest.raises(BadRequest, match="2500"):
        await tk.generate(GenerateRequest("x" * 2501))


@pytest.mark.parametrize(
    ("fault", "error", "match"),
    [
        ("failed_string", ProviderUnavailable, "Internal generation error"),
        ("failed_object", ProviderUnavailable, "005001095"),
        ("failed_numeric", ProviderUnavailable, "Result parsing error"),
        ("no_id", ProviderUnavailable, "no id"),
        ("out_of_credits", OutOfCredits, "credits"),
        ("bad_key", AuthFailed, "refused"),
        ("url_404", ProviderUnavailable, "404"),
    ],
)
async def test_task_failures(
    tk: Router, task: FakeTask, fault: str, error: type[Exception], match: str
) -> None:
    task.script(fault)
    with pytest.raises(error, match=match):
        await tk.generate(GenerateRequest("x"))
    assert task.creates == 1


@pytest.mark.parametrize("fault", ["server_error", "gateway_timeout", "reset", "malformed"])
async def test_task_create_never_retried_blindly(tk: Router, task: FakeTask, fault: str) -> None:
    task.script(fault)
    with pytest.raises((ProviderUnavailable, ProviderTimeout)):
        await tk.generate(GenerateRequest("x"))
    assert task.creates == 1


async def test_task_create_429_is_safe_to_retry(tk: Router, task: FakeTask) -> None:
    task.script("rate_limited")
    assert (await tk.generate(GenerateRequest("x"))).images
    assert task.creates == 2


async def test_task_create_429_exhausted(tk: Router, task: FakeTask) -> None:
    task.script(*["rate_limited"] * 3)
    with pytest.raises(RateLimited):
        await tk.generate(GenerateRequest("x"))


async def test_task_poll_error_retried(tk: Router, task: FakeTask) -> None:
    task.script("poll_server_error")
    assert (await tk.generate(GenerateRequest("x"))).images
    assert task.creates == 1


async def test_task_never_completes_hits_deadline(task: FakeTask, router_for: Callable[..., Router]) -> None:
    router = router_for(
        {"name": "vtrix", "kind": "task", "base_url": task.base_url, "api_key": TASK_KEY},
        task_deadline=0.3,
    )
    task.script("never_completes")
    with pytest.raises(ProviderTimeout, match="did not finish"):
        await router.generate(GenerateRequest("x"))


async def test_task_safety_failure(tk: Router, task: FakeTask) -> None:
    task.script(Fault("failed_string", message="Content flagged by moderation"))
    with pytest.raises(SafetyBlocked):
        await tk.generate(GenerateRequest("x"))


async def test_task_check(tk: Router) -> None:
    assert (await tk.providers[0].check()).startswith("ok")


async def test_nbpro_hang_times_out(nbpro: FakeNBPro, router_for: Callable[..., Router]) -> None:
    router = router_for(
        {"name": "n", "kind": "nbpro", "base_url": nbpro.base_url, "api_key": KEY, "timeout": 0.3}
    )
    nbpro.script(Fault("hang", hang=5))
    with pytest.raises(ProviderTimeout):
        await router.generate(GenerateRequest("x"))


async def test_task_create_hang_times_out_without_retry(
    task: FakeTask, router_for: Callable[..., Router]
) -> None:
    router = router_for(
        {"name": "t", "kind": "task", "base_url": task.base_url, "api_key": TASK_KEY, "timeout": 0.3}
    )
    task.script(Fault("hang", hang=5))
    with pytest.raises(ProviderTimeout):
        await router.generate(GenerateRequest("x"))
    assert task.creates == 1


async def test_task_html_answer(tk: Router, task: FakeTask) -> None:
    task.script("html")
    with pytest.raises(ProviderUnavailable, match="HTML"):
        await tk.generate(GenerateRequest("x"))
