"""Fake Vtrix / SeaCloud task API for `nano_banana_2`: create a task, then poll it."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.fakes.imagegen import ALL_RATIOS, dims_for
from tests.fakes.providers.base import (
    COMMON_FAULTS,
    FakeProvider,
    Fault,
    bearer_token,
    random_id,
)

TASK_MODEL = "nano_banana_2"
RESOLUTIONS = ("0.5K", "1K", "2K", "4K")
MAX_PROMPT_CHARS = 2500
MAX_IMAGE_URLS = 3
PENDING_STATUSES = ("pending", "processing", "in_progress")
#: Faults that decide how a created task ends (rather than how the create call is answered).
OUTCOME_FAULTS = frozenset(
    {
        "failed_string",
        "failed_object",
        "failed_numeric",
        "never_completes",
        "url_404",
        "url_not_image",
        "poll_server_error",
    }
)
TASK_FAULTS = COMMON_FAULTS | OUTCOME_FAULTS | {"completed_on_create", "no_id", "out_of_credits"}


class TaskApiError(Exception):
    """An HTTP error answer with an arbitrary JSON body."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        """Remember status, body and headers."""
        super().__init__(str(body))
        self.status, self.body, self.headers = status, body, headers

    def response(self) -> web.Response:
        """Render as JSON."""
        return web.json_response(self.body, status=self.status, headers=self.headers)


def bad_params(message: str) -> TaskApiError:
    """400 with the `{"error", "error_code"}` body shape."""
    return TaskApiError(400, {"error": message, "error_code": 40000})


def error_for_fault(fault: Fault) -> TaskApiError | None:
    """The error answer of an HTTP-error fault on the create call, or None."""
    if fault.name == "out_of_credits":
        message = fault.message or "Insufficient credits"
        envelope = {"code": 402, "message": message, "error_code": 40201}
        return TaskApiError(fault.status or 402, {"status": envelope, "data": None})
    headers = None
    if fault.name == "rate_limited" and fault.retry_after is not None:
        headers = {"Retry-After": str(max(1, math.ceil(fault.retry_after)))}
    table = {
        "rate_limited": (429, "Too many requests"),
        "bad_key": (401, "Invalid API key"),
        "server_error": (500, "Internal server error"),
        "bad_gateway": (502, "Bad gateway"),
        "unavailable": (503, "Service unavailable"),
        "gateway_timeout": (504, "Gateway timeout"),
    }
    if fault.name not in table:
        return None
    status, message = table[fault.name]
    return TaskApiError(fault.status or status, {"message": fault.message or message}, headers)


@dataclass
class TaskParams:
    """Validated create-task parameters."""

    prompt: str
    image_urls: list[str]
    ratio: str
    resolution: str


@dataclass
class TaskState:
    """Server-side state of one task."""

    id: str
    params: TaskParams
    fault: Fault
    created_at: int
    polls: int = 0
    poll_error_pending: bool = False
    final: dict[str, Any] | None = None


def _params_block(body: Any) -> dict[str, Any]:
    """The `input[0].params` object of a create request."""
    if not isinstance(body, dict):
        raise bad_params("Invalid request body")
    if body.get("model") != TASK_MODEL:
        raise bad_params(f"model not found: {body.get('model')}")
    blocks = body.get("input")
    if not isinstance(blocks, list) or not blocks or not isinstance(blocks[0], dict):
        raise bad_params("input is required")
    params = blocks[0].get("params")
    if not isinstance(params, dict):
        raise bad_params("input[0].params is required")
    return params


def parse_params(body: Any) -> TaskParams:
    """Validate prompt, image_urls, aspect_ratio and resolution."""
    params = _params_block(body)
    prompt = params.get("prompt")
    if not isinstance(prompt, str) or not 1 <= len(prompt) <= MAX_PROMPT_CHARS:
        raise bad_params("prompt length must be between 1 and 2500 characters")
    urls = params.get("image_urls") or []
    if not isinstance(urls, list) or len(urls) > MAX_IMAGE_URLS:
        raise bad_params("image_urls accepts at most 3 images")
    for url in urls:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise bad_params(f"invalid image url: {str(url)[:60]}")
    ratio = params.get("aspect_ratio") or "1:1"
    if ratio not in ALL_RATIOS:
        raise bad_params(f"invalid aspect_ratio: {ratio}")
    resolution = params.get("resolution") or "1K"
    if resolution not in RESOLUTIONS:
        raise bad_params(f"invalid resolution: {resolution}")
    return TaskParams(prompt, urls, ratio, resolution)


def _failure(fault: Fault) -> Any:
    """The `error` value of a failed task."""
    if fault.name == "failed_string":
        return fault.message or "Internal generation error"
    if fault.name == "failed_object":
        return {"code": "005001095", "error_message": fault.message or "Internal generation error"}
    return {"code": 5001096, "message": fault.message or "Result parsing error"}


class FakeTask(FakeProvider):
    """Fake `POST /model/v1/generation` + `GET /model/v1/generation/task/{id}`."""

    FAULTS: ClassVar[frozenset[str]] = TASK_FAULTS

    def __init__(self, api_key: str | None = None, *, api_keys: Sequence[str] = ()) -> None:
        """Task bookkeeping on top of the common fake state."""
        super().__init__(api_key=api_key, api_keys=api_keys)
        self.polls_to_complete = 2
        self.creates = 0
        self.polls = 0
        self.tasks: dict[str, TaskState] = {}

    def _add_routes(self, app: web.Application) -> None:
        """Register create, poll and output-file routes."""
        app.router.add_post("/model/v1/generation", self._create)
        app.router.add_get("/model/v1/generation/task/{task_id}", self._poll)
        app.router.add_get("/outputs/{task_id}/{name}", self._serve_file)

    def _route_not_found(self, request: web.Request) -> web.Response:
        """JSON 404."""
        return web.json_response({"message": "Not found"}, status=404)

    def _sample_body(self) -> Any:
        """A success-shaped payload for the "malformed" fault."""
        return {"id": "task_x", "status": "in_progress", "model": TASK_MODEL, "created_at": 0}

    def _check_auth(self, request: web.Request) -> None:
        """401 `{"message": "Invalid API key"}` for a missing or wrong Bearer key."""
        if self.api_key is not None and not self.accepts(bearer_token(request)):
            raise TaskApiError(401, {"message": "Invalid API key"})

    # -- create ---------------------------------------------------------------------------

    async def _create(self, request: web.Request) -> web.Response:
        """POST /model/v1/generation."""
        self.calls += 1
        self.creates += 1
        try:
            return await self._create_task(request)
        except TaskApiError as error:
            return error.response()

    async def _create_task(self, request: web.Request) -> web.Response:
        """Auth, validation, create-time faults, then the new task object."""
        self._check_auth(request)
        rec = self._recorded(request)
        params = parse_params(rec.json)
        fault = self._next_fault(request)
        await self._pause(fault)
        if (answer := self._transport_fault(request, fault)) is not None:
            return answer
        if (error := error_for_fault(fault)) is not None:
            raise error
        now = int(time.time())
        if fault.name == "no_id":
            return web.json_response({"status": "in_progress", "model": TASK_MODEL, "created_at": now})
        task = TaskState(f"task_{random_id(9)}", params, fault, now)
        task.poll_error_pending = fault.name == "poll_server_error"
        self.tasks[task.id] = task
        if fault.name == "completed_on_create":
            return web.json_response(await self._finish(task))
        return web.json_response({**self._base(task, "in_progress"), "progress": 0.0})

    # -- poll -----------------------------------------------------------------------------

    async def _poll(self, request: web.Request) -> web.Response:
        """GET /model/v1/generation/task/{id}: advance the task by one step."""
        self.polls += 1
        try:
            self._check_auth(request)
        except TaskApiError as error:
            return error.response()
        task = self.tasks.get(request.match_info["task_id"])
        if task is None:
            return web.json_response({"message": "Task not found"}, status=404)
        if task.poll_error_pending:
            task.poll_error_pending = False
            return web.json_response({"message": "Internal server error"}, status=500)
        return web.json_response(await self._advance(task))

    async def _advance(self, task: TaskState) -> dict[str, Any]:
        """The task object after one more poll."""
        if task.final is not None:
            return task.final
        task.polls += 1
        never = task.fault.name == "never_completes"
        if never or task.polls <= self.polls_to_complete:
            return self._pending(task, never)
        return await self._finish(task)

    def _pending(self, task: TaskState, never: bool) -> dict[str, Any]:
        """A non-final status with progress."""
        if never:
            status = "in_progress"
            progress = round(1 - 0.5**task.polls, 3) if task.polls < 10 else 0.999
        else:
            status = PENDING_STATUSES[(task.polls - 1) % len(PENDING_STATUSES)]
            progress = round(task.polls / (self.polls_to_complete + 1), 3)
        return {**self._base(task, status), "progress": progress}

    def _base(self, task: TaskState, status: str) -> dict[str, Any]:
        """Fields every task object carries."""
        return {"id": task.id, "status": status, "model": TASK_MODEL, "created_at": task.created_at}

    async def _finish(self, task: TaskState) -> dict[str, Any]:
        """Complete (or fail) the task and remember the final object."""
        if task.fault.name in ("failed_string", "failed_object", "failed_numeric"):
            task.final = {**self._base(task, "failed"), "error": _failure(task.fault)}
            return task.final
        params = task.params
        width, height = dims_for(params.ratio, params.resolution)
        data = await self._render(width, height, "PNG", params.prompt)
        url = self._host(f"/outputs/{task.id}/output.png", data, "image/png", task.fault)
        prompt_tokens = max(1, len(params.prompt) // 4)
        now = int(time.time())
        task.final = {
            **self._base(task, "completed"),
            "output": [{"content": [{"type": "image", "url": url}]}],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": 1290,
                "total_tokens": prompt_tokens + 1290,
            },
            "metadata": {"in_queue_at": task.created_at, "upload_at": now, "completed_at": now},
        }
        return task.final
