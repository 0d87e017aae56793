"""The Vtrix task API (seed 004): create a generation task, then poll it until it ends."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from bot.errors import (
    AuthFailed,
    BadRequest,
    NoImageReturned,
    OutOfCredits,
    ProviderError,
    RateLimited,
    SafetyBlocked,
    Timeout,
    Unavailable,
)
from bot.providers.base import GenerateRequest, GenerateResult, JsonDict
from bot.providers.common import ProviderBase, fan_out
from bot.providers.http import ErrorMapper, parse_retry_after
from bot.providers.sanitize import clean_message, reason

log = logging.getLogger(__name__)

CREATE = "/model/v1/generation"
POLL = "/model/v1/generation/task/{id}"
DONE = frozenset({"completed", "succeeded", "success", "done"})
FAILED = frozenset({"failed", "error", "cancelled", "canceled"})
_SAFETY_WORDS = ("safety", "moderation", "sensitive", "nsfw", "prohibited")


def _message(body: Any) -> tuple[str, int | None]:
    """The message and error_code from the several error shapes this API uses ("" when none)."""
    if isinstance(body, dict):
        status_block = body.get("status")
        inner: dict[str, Any] = status_block if isinstance(status_block, dict) else body
        error = inner.get("error")
        if isinstance(error, dict):
            inner = error
            error = error.get("error_message") or error.get("message")
        message = error if isinstance(error, str) else inner.get("message")
        code = inner.get("error_code")
        if message:
            return str(message), code if isinstance(code, int) else None
    return "", None


def map_error(provider: str) -> ErrorMapper:
    """The error mapper for HTTP-level failures."""

    def mapper(status: int, body: Any, headers: Mapping[str, str]) -> ProviderError:
        message, code = _message(body)
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
            return Unavailable(f"{provider}: the task was not found ({why})", provider=provider)
        if status >= 500:
            return Unavailable(f"{provider} failed ({why})", provider=provider)
        return BadRequest(f"{provider} rejected the request ({why})", provider=provider)

    return mapper


def task_error(task: JsonDict, provider: str) -> ProviderError:
    """A failed task's error, given as a string or as {code, error_message | message}."""
    error = task.get("error")
    code: Any = None
    if isinstance(error, dict):
        code = error.get("code")
        raw = error.get("error_message") or error.get("message")
    else:
        raw = error or task.get("message")
    message = str(raw or "")
    shown = clean_message(message) or "unknown error"
    tag = clean_message(code, limit=40)
    suffix = f" (code {tag})" if tag else ""
    if any(word in message.lower() for word in _SAFETY_WORDS):
        return SafetyBlocked(
            f"{provider} refused the image: {shown}{suffix}",
            reason=tag or "policy",
            model_text=clean_message(message),
            provider=provider,
        )
    return Unavailable(f"{provider}: the generation failed: {shown}{suffix}", provider=provider)


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
        task, key = await self.keys.run(lambda key: self._create(key, body))
        deadline = time.monotonic() + self.limits.poll_deadline
        while not self._finished(task):
            if time.monotonic() >= deadline:
                raise Timeout(
                    f"{self.name} did not finish the image within {self.limits.poll_deadline:.0f} s",
                    provider=self.name,
                )
            await asyncio.sleep(self.limits.poll_interval)
            task = await self._poll(key, str(task["id"]))
        return await self._result(task, model)

    async def _create(self, key: str | None, body: JsonDict) -> tuple[JsonDict, str | None]:
        """POST the task. Only a 429 is retried: any other failure may have created a task."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                task = await self.send_with(key, "POST", self.base_url + CREATE, json_body=body, retry=False)
                break
            except RateLimited as e:
                delay = self._create_delay(e, attempt, started)
                if delay is None:
                    raise
                await asyncio.sleep(delay)
        if not isinstance(task, dict) or not task.get("id"):
            raise Unavailable(f"{self.name}: the task could not be created (no id)", provider=self.name)
        return task, key

    def _create_delay(self, error: RateLimited, attempt: int, started: float) -> float | None:
        """Seconds before the next create attempt after a 429, or None when the budget is spent."""
        policy = self.http.policy
        delay = policy.base_delay * 2 ** (attempt - 1) if error.retry_after is None else error.retry_after
        if attempt >= policy.attempts or time.monotonic() - started + delay > policy.total_seconds:
            return None
        return delay

    async def _poll(self, key: str | None, task_id: str) -> JsonDict:
        """GET the task (polls are safe to retry)."""
        task = await self.send_with(key, "GET", self.base_url + POLL.format(id=task_id))
        if not isinstance(task, dict):
            raise Unavailable(f"{self.name} sent an unexpected task status", provider=self.name)
        task.setdefault("id", task_id)
        return task

    def _finished(self, task: JsonDict) -> bool:
        """True when completed; raises when failed; False while pending."""
        status = str(task.get("status") or "").lower()
        if status in FAILED or (task.get("error") and status not in DONE):
            raise task_error(task, self.name)
        return status in DONE

    async def _result(self, task: JsonDict, model: str) -> GenerateResult:
        """Download every image in output[].content[]; keep any text."""
        urls: list[str] = []
        texts: list[str] = []
        for block in task.get("output") or []:
            for item in (block.get("content") or []) if isinstance(block, dict) else []:
                if not isinstance(item, dict):
                    continue
                if item.get("type") == "image" and item.get("url"):
                    urls.append(str(item["url"]))
                elif item.get("type") == "text" and (item.get("text") or item.get("content")):
                    texts.append(str(item.get("text") or item.get("content")))
        if not urls:
            said = "\n".join(texts) or None
            raise NoImageReturned(
                f"{self.name} finished without an image" + (f". The model said: {said}" if said else ""),
                model_text=said,
                provider=self.name,
            )
        images = await asyncio.gather(*(self.download(u) for u in urls))
        return GenerateResult(
            images=list(images),
            provider=self.name,
            model=str(task.get("model") or model),
            text="\n".join(texts) or None,
            state={"task_id": task.get("id")},
            usage=usage if isinstance(usage := task.get("usage"), dict) else {},
        )

    async def check(self) -> str:
        """Poll a task id that cannot exist: 404 proves the key is accepted."""
        try:
            await self.send("GET", self.base_url + POLL.format(id="nanobot-check"), retry=False)
        except Unavailable as e:
            if "not found" in e.message:
                return "ok: key accepted"
            raise
        return "ok"
