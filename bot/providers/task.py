"""The Vtrix (SeaCloud) generation task API: create a task, then poll it until it ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import Any, ClassVar, Self

from pydantic import StrictInt, StrictStr, model_validator
from pydantic_core import PydanticCustomError

from bot.errors import (
    AuthFailed,
    BadRequest,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SafetyBlocked,
)
from bot.i18n import Text, Words
from bot.providers.base import GenerateRequest, GenerateResult, JsonDict
from bot.providers.common import ProviderBase, fan_out
from bot.providers.http import ErrorMapper, parse_retry_after
from bot.providers.retry import rate_limited, run
from bot.providers.sanitize import clean_message, reason
from bot.providers.wire import Loose, WireModel, parse, parse_error_body

log = logging.getLogger(__name__)

CREATE = "/model/v1/generation"
POLL = "/model/v1/generation/task/{id}"
DONE = frozenset({"completed", "succeeded", "success", "done"})
FAILED = frozenset({"failed", "error", "cancelled", "canceled"})
_SAFETY_WORDS = ("safety", "moderation", "sensitive", "nsfw", "prohibited")


class _ErrorFields(WireModel):
    """Where this API puts an error's text and code, at whatever depth it nests them."""

    message: Loose[str] = None
    error_message: Loose[str] = None
    error_code: Loose[StrictInt] = None
    error: Loose[_ErrorFields | StrictStr] = None


class _ErrorBody(_ErrorFields):
    """{"message"}, {"error", "error_code"} or {"status": {"code", "message", "error_code"}, "data"}."""

    status: Loose[_ErrorFields] = None


class _Failure(WireModel):
    """A failed task's error object: a code (string or number) and error_message or message."""

    code: Loose[str] = None
    error_message: Loose[str] = None
    message: Loose[str] = None


class _Item(WireModel):
    """One output[].content[] entry: an image to download, or text."""

    type: Loose[str] = None
    url: str | None = None
    text: Loose[str] = None
    content: Loose[str] = None

    @model_validator(mode="after")
    def _image_has_url(self) -> Self:
        """An image entry without its URL has no image to give."""
        if self.type == "image" and not self.url:
            raise PydanticCustomError("missing", "Field required", {"field": "url"})
        return self


class _Block(WireModel):
    """One output[] block."""

    content: list[_Item] | None = None


class _Task(WireModel):
    """A task as polled: its status always; its output, usage or error once it ends."""

    id: str | None = None
    status: str
    model: Loose[str] = None
    error: Loose[_Failure | str] = None
    message: Loose[str] = None
    output: list[_Block] | None = None
    usage: Loose[dict[str, Any]] = None

    @property
    def state(self) -> str:
        """The status in lower case."""
        return self.status.lower()

    @property
    def has_error(self) -> bool:
        """Whether the task reports an error (an empty error object reports none)."""
        if isinstance(self.error, _Failure):
            return bool(self.error.model_fields_set)
        return bool(self.error)


class _Created(_Task):
    """A task as created: its id always (a fast task may already be done, with its output)."""

    id: str
    status: str = ""


def _message(body: _ErrorBody) -> tuple[str, int | None]:
    """The message and error_code from the several error shapes this API uses ("" when none)."""
    inner: _ErrorFields = body.status or body
    text = inner.error
    if isinstance(text, _ErrorFields):
        inner = text
        text = text.error_message or text.message
    message = text if isinstance(text, str) else inner.message
    if message:
        return message, inner.error_code
    return "", None


def map_error(provider: str) -> ErrorMapper:
    """The error mapper for HTTP-level failures."""

    def mapper(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        message, code = _message(parse_error_body(_ErrorBody, body))
        why = reason(status, message)
        credits = (code is not None and 40201 <= code <= 40208) or "insufficient" in message.lower()
        if status == 402 or (status == 403 and credits):
            return OutOfCredits(f"{provider}: the account is out of credits ({why})", provider=provider)
        if status in (401, 403):
            return AuthFailed(f"{provider}: the API key was refused ({why})", provider=provider)
        if status == 429:
            delay = parse_retry_after(headers.get("Retry-After"))
            return RateLimited(
                f"{provider} is rate limiting requests; try again shortly",
                retry_after=delay,
                provider=provider,
            )
        if status == 404:
            return ProviderUnavailable(f"{provider}: the task was not found ({why})", provider=provider)
        if status >= 500:
            return ProviderUnavailable(f"{provider} failed ({why})", provider=provider)
        return BadRequest(f"{provider} rejected the request ({why})", provider=provider)

    return mapper


def task_error(task: _Task, provider: str) -> ProviderError:
    """A failed task's error, given as a string or as {code, error_message | message}."""
    error = task.error
    code: str | None = None
    if isinstance(error, _Failure):
        code = error.code
        raw = error.error_message or error.message
    else:
        raw = error or task.message
    message = raw or ""
    shown: Words = clean_message(message) or Text("provider.unknown_error")
    tag = clean_message(code, limit=40)
    suffix = f" (code {tag})" if tag else ""
    if any(word in message.lower() for word in _SAFETY_WORDS):
        refused = Text("provider.safety.refused", provider=provider, shown=shown)
        if tag:
            refused = Text("provider.safety.refused_code", provider=provider, shown=shown, code=tag)
        return SafetyBlocked(
            refused,
            reason=tag or None,
            model_text=clean_message(message),
            provider=provider,
        )
    return ProviderUnavailable(f"{provider}: the generation failed: {shown}{suffix}", provider=provider)


class TaskProvider(ProviderBase):
    """Creates a task without blind retries, then polls it within a deadline."""

    kind: ClassVar[str] = "task"

    def error_mapper(self) -> ErrorMapper:
        """The task API's several error shapes."""
        return map_error(self.name)

    def _params(self, request: GenerateRequest) -> JsonDict:
        """The params block: prompt, image URLs, ratio, resolution."""
        params: JsonDict = {"prompt": request.prompt}
        urls = [i.url for i in request.images if i.url]
        if urls:
            params["image_urls"] = urls
        if request.aspect_ratio:
            params["aspect_ratio"] = request.aspect_ratio
        if request.resolution:
            params["resolution"] = request.resolution
        return params

    async def generate(self, request: GenerateRequest) -> GenerateResult:
        """One task per requested image, run concurrently."""
        spec = self.validate(request)
        body = {"model": spec.name, "input": [{"params": self._params(request)}]}
        return await fan_out(lambda: self._run(body, spec.name), request.count)

    async def _run(self, body: JsonDict, model: str) -> GenerateResult:
        """Create, poll (with the key that created the task), download."""
        created, key = await self.keys.run(lambda key: self._create(key, body))
        task: _Task = parse(_Created, created, self.name)
        deadline = time.monotonic() + self.limits.poll_deadline
        while not self._finished(task):
            if time.monotonic() >= deadline:
                seconds = f"{self.limits.poll_deadline:.0f}"
                late = Text("provider.timeout.task", provider=self.name, seconds=seconds)
                raise ProviderTimeout(late, provider=self.name)
            await asyncio.sleep(self.limits.poll_interval)
            task = await self._poll(key, task.id or "")
        return await self._result(task, model)

    async def _create(self, key: str | None, body: JsonDict) -> tuple[JsonDict, str | None]:
        """POST the task. Only a rate limit is retried: any other failure may have created a task."""
        post = partial(self.send_with, key, "POST", self.base_url + CREATE, json_body=body, retry=False)
        task = await run(self.http.policy, post, provider=self.name, retry_on=rate_limited)
        if not isinstance(task, dict) or not task.get("id"):
            raise ProviderUnavailable(
                f"{self.name}: the task could not be created (no id)", provider=self.name
            )
        return task, key

    async def _poll(self, key: str | None, task_id: str) -> _Task:
        """GET the task (polls are safe to retry); an answer without an id is about this task."""
        data = await self.send_with(key, "GET", self.base_url + POLL.format(id=task_id))
        task = parse(_Task, data, self.name)
        return task if task.id else task.model_copy(update={"id": task_id})

    def _finished(self, task: _Task) -> bool:
        """True when completed; raises when failed; False while pending."""
        if task.state in FAILED or (task.has_error and task.state not in DONE):
            raise task_error(task, self.name)
        return task.state in DONE

    async def _result(self, task: _Task, model: str) -> GenerateResult:
        """Download every image in output[].content[]; keep any text."""
        items = [item for block in task.output or [] for item in block.content or []]
        urls = [item.url for item in items if item.type == "image" and item.url]
        texts = [said for item in items if item.type == "text" and (said := item.text or item.content)]
        if not urls:
            said = "\n".join(texts) or None
            empty = Text("provider.no_image.task", provider=self.name)
            if said:
                empty = Text("provider.no_image.task_said", provider=self.name, said=said)
            raise NoImageReturned(empty, model_text=said, provider=self.name)
        images = await asyncio.gather(*(self.download(u) for u in urls))
        return GenerateResult(
            images=list(images),
            provider=self.name,
            model=task.model or model,
            text="\n".join(texts) or None,
            state={"task_id": task.id},
            usage=task.usage or {},
        )

    async def check(self) -> str:
        """Poll a task id that cannot exist: 404 proves the key is accepted."""
        try:
            await self.send("GET", self.base_url + POLL.format(id="nanobot-check"), retry=False)
        except ProviderUnavailable as e:
            if "not found" in e.message:
                return "ok: key accepted"
            raise
        return "ok"
