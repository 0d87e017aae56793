"""What an admitted job does once it has its slot: download its inputs, call the provider, store the
turn and fit the images for upload (side by side)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from functools import partial

from bot.config import Settings
from bot.errors import InputError
from bot.imaging import (
    ByteBudget,
    FittedImage,
    Intake,
    fit_for_upload_async,
    image_dims,
    intake,
    must_shrink_over,
    nearest_ratio,
)
from bot.jobs.checks import NO_IMAGE, check_upscale_size
from bot.jobs.conversations import Threads
from bot.jobs.inputs import load_inputs, prepare_inputs
from bot.jobs.recorder import TurnRecorder, failure_text
from bot.jobs.routing import JobRun, Routing
from bot.jobs.spec import AUTO, DISCORD_MESSAGE_LIMIT, JobResult, JobSpec, Outcome, RawInput, raw_image
from bot.jobs.supervisor import Progress
from bot.providers.base import (
    GenerateRequest,
    InputImage,
    ModelSpec,
    Preview,
    PreviewHook,
    Turn,
    UpscaleRequest,
)
from bot.providers.pacing import ON_SEND
from bot.providers.router import Router

#: Bytes of provider answers (results, JSON with base64 results) all jobs together may hold from
#: download to fit: a 4K PNG is 48 MB, so about five at once. Over it, a download waits its turn
#: (before reading the body): fifty 4K jobs at once otherwise held 2.4 GB of answers, waiting for
#: the image pool, and the process passed 3 GiB.
RESULT_BYTES_BUDGET = 160 * 1024 * 1024


class Pipeline:
    """Runs one job's work; `sending` is told just before the provider gets the request."""

    def __init__(
        self,
        settings: Settings,
        router: Router,
        routing: Routing,
        threads: Threads,
        recorder: TurnRecorder,
        sending: Callable[[JobRun], None],
    ) -> None:
        self.settings = settings
        self.router = router
        self.routing = routing
        self.threads = threads
        self.recorder = recorder
        self.sending = sending
        self.budget = ByteBudget(RESULT_BYTES_BUDGET)

    async def run(self, job: JobSpec, run: JobRun) -> JobResult:
        """Download the inputs, call the provider, store and fit; a failure leaves a failed turn."""
        started = run.started = time.monotonic()  # the job has its slot: its running time counts from here
        decode_over = must_shrink_over(job.upload_limit, DISCORD_MESSAGE_LIMIT)
        with intake(self.budget, decode_over=decode_over) as results:  # until the fit is done
            try:
                inputs = await load_inputs(job.inputs)
                if job.kind == "upscale":
                    outcome = await self._upscale(job, inputs, run)
                else:
                    outcome = await self._generate(job, inputs, run)
            except Exception as e:
                await self.recorder.failed(job, failure_text(e))
                raise
            files, turn_id = await self._fit_and_record(job, outcome, results)
        result = outcome.result
        return JobResult(
            files=files,
            provider=result.provider,
            model=result.model,
            prompt=job.prompt,
            resolution=job.resolution,
            aspect_ratio=outcome.ratio,
            elapsed=time.monotonic() - started,
            text=result.text,
            turn_id=turn_id,
            history_cut=outcome.history_cut,
            seed=job.seed,
            sources=result.sources,
            references=0 if job.kind == "upscale" else len(outcome.inputs),
            usage=result.usage,
            reported_cents=self.routing.reported(job, run, result),
        )

    async def prepare(self, inputs: list[RawInput], spec: ModelSpec) -> list[InputImage]:
        """Each input checked and shrunk to what the model accepts (off the loop)."""
        return await prepare_inputs(self.settings, inputs, spec)

    async def _fit_and_record(
        self, job: JobSpec, outcome: Outcome, results: Intake
    ) -> tuple[list[FittedImage], int | None]:
        """Fit the images for upload (image pool) while their originals and the turn are stored.

        Both take time on a 4K result (a re-encode; hashing and writing 48 MB): side by side, the
        user waits for the longer one only. A fit that fails leaves the turn failed, not done.
        """
        fitting = asyncio.ensure_future(self._fit(job, outcome, results))
        try:
            turn_id = await self.recorder.done(job, outcome)
        except BaseException:
            fitting.cancel()
            with contextlib.suppress(BaseException):
                await fitting
            raise
        try:
            return await fitting, turn_id
        except Exception as e:
            await self.recorder.mark_failed(turn_id, failure_text(e))
            raise

    async def _fit(self, job: JobSpec, outcome: Outcome, results: Intake) -> list[FittedImage]:
        """The images fitted for upload, from the pixels decoded while they arrived where there are."""
        images = outcome.result.images
        return await fit_for_upload_async(
            [(image.data, image.mime) for image in images],
            per_file_limit=job.upload_limit,
            total_limit=DISCORD_MESSAGE_LIMIT,
            decoded=await results.decoded([image.data for image in images]),
        )

    async def _generate(self, job: JobSpec, inputs: list[RawInput], run: JobRun) -> Outcome:
        """Imagine / edit / refine: inputs to the model's limits, history or parent image, the router."""
        decision = run.decision  # made at admission: the provider and model charged and queued for
        spec = decision.spec
        images = await self.prepare(inputs, spec)
        history: list[Turn] = []
        cut = False
        if job.parent is not None:
            if job.use_history and decision.kind == "gemini" and spec.multi_turn:
                replay = await self.threads.history(job.parent)
                history, cut = replay.turns, replay.cut
            if not history and job.parent_image:
                parent_image = await self.threads.output_image(job.parent, 0)
                url = await self.threads.output_url(job.parent, 0) if spec.needs_urls else None
                images = [*await self.prepare([raw_image(parent_image, url)], spec), *images]
        ratio = _ratio(job, images, spec)
        request = GenerateRequest(
            prompt=job.prompt,
            model=decision.model,
            images=images,
            aspect_ratio=ratio,
            resolution=job.resolution,
            count=job.count,
            history=history,
            seed=job.seed,
            thinking=job.thinking,
            safety=job.safety_applied,
            search=job.searches(spec),
            on_preview=self._previews(job, run),
        )
        allow = self.routing.affordable(job, run)
        told = ON_SEND.set(partial(self.sending, run))  # when the request leaves, after any rate wait
        try:
            result = await self.router.generate(request, decision.provider, allow=allow)
        finally:
            ON_SEND.reset(told)
        return Outcome(result, images, ratio, cut, requested_model=spec.name)

    def _previews(self, job: JobSpec, run: JobRun) -> PreviewHook | None:
        """Tells the job's progress each interim image of a thinking model, when LIVE_PREVIEW and the
        server's previews setting are on."""
        report = job.progress
        wanted = self.settings.live_preview and job.previews
        if not wanted or report is None or not run.decision.spec.thinking_levels:
            return None

        async def show(preview: Preview) -> None:
            elapsed = time.monotonic() - (run.started or time.monotonic())  # as the progress reports count
            lane = run.decision.lane
            await report(
                Progress(run.job_id, "running", lane, elapsed=elapsed, charged=run.sent, preview=preview)
            )

        return show

    async def _upscale(self, job: JobSpec, inputs: list[RawInput], run: JobRun) -> Outcome:
        """Upscale the first input (else the parent's image) with a capable provider, else locally."""
        spec = self.router.local.spec(None)
        inputs = inputs[:1]
        if not inputs and job.parent is not None:
            inputs = [raw_image(await self.threads.output_image(job.parent, 0))]
        if not inputs:
            raise InputError(NO_IMAGE)
        width, height = image_dims(inputs[0].data)  # the header only: the declared size may lie
        check_upscale_size(width, height, job.factor, self.settings.max_output_pixels)
        [image] = await self.prepare(inputs, spec)
        self.sending(run)
        result = await self.router.upscale(UpscaleRequest(image, job.factor), job.provider)
        return Outcome(result, [image])


def _ratio(job: JobSpec, images: list[InputImage], spec: ModelSpec) -> str | None:
    """The aspect ratio to ask for; "auto" keeps the first input's shape."""
    if job.aspect_ratio != AUTO:
        return job.aspect_ratio
    first = next((i.data for i in images if i.data), None)
    if first is None:
        return None
    width, height = image_dims(first)
    return nearest_ratio(width, height, spec.aspect_ratios)
