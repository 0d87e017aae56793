"""The one job pipeline: inputs → provider → turn stored → results fitted for upload. No Discord here."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.admission import Admission, Charge, Who
from bot.config import Settings
from bot.costs import credits
from bot.errors import InputError, NanoBotError, StorageUnavailable
from bot.imaging import FittedImage, fit_for_upload_async, image_dims, nearest_ratio, prepare_input_async
from bot.jobs import (
    AUTO,
    DISCORD_FILE_LIMIT,
    DISCORD_MESSAGE_LIMIT,
    JobInput,
    JobKind,
    JobResult,
    JobSpec,
    Outcome,
    PendingInput,
    RawInput,
    raw_image,
)
from bot.metrics import JobMetrics, Metrics, outcome_of
from bot.prechecks import (
    check_continue,
    check_input_count,
    check_upscale_size,
    declared_dims,
    live_parent,
)
from bot.providers.base import (
    GenerateRequest,
    ImageProvider,
    InputImage,
    ModelSpec,
    Turn,
    UpscaleRequest,
)
from bot.providers.router import Router
from bot.queue import JobQueue
from bot.recorder import TurnRecorder, failure_text
from bot.storage.blobs import BlobStore
from bot.storage.guilds import GuildConfig
from bot.storage.tables import utcnow
from bot.storage.turns import TurnRecord, TurnStore
from bot.supervisor import Supervisor
from bot.threads import Threads, replayable

log = logging.getLogger(__name__)
#: Seconds between checks, at shutdown, for results still being delivered.
IDLE_POLL = 0.05
#: Log values written as they are; anything else is quoted and escaped (no forged records).
PLAIN_VALUE = re.compile(r"[\w.:/@+-]{1,200}")
CANCELLED_CHARGED = "cancelled after the provider started (charged)"


@dataclass(slots=True)
class _Run:
    """One admitted job's bookkeeping: its id, what it was priced at, and whether the provider has it."""

    job_id: str
    base_cents: int = 0
    replayed: int = 0
    #: The request went to the provider (or the local upscaler): from here a cancel is charged.
    sent: bool = False


def log_value(value: object) -> str:
    """A value for a key=value log line: plain when safe, else JSON-quoted (newlines escaped)."""
    text = str(value)
    return text if PLAIN_VALUE.fullmatch(text) else json.dumps(text, ensure_ascii=True)


__all__ = [
    "AUTO",
    "DISCORD_FILE_LIMIT",
    "DISCORD_MESSAGE_LIMIT",
    "JobInput",
    "JobKind",
    "JobResult",
    "JobService",
    "JobSpec",
    "PendingInput",
    "RawInput",
    "raw_image",
]


class JobService:
    """Runs jobs for every entry point (slash commands, context menus, replies, buttons)."""

    def __init__(
        self,
        settings: Settings,
        router: Router,
        turns: TurnStore | None = None,
        blobs: BlobStore | None = None,
        threads: Threads | None = None,
        admission: Admission | None = None,
        supervisor: Supervisor | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.router = router
        self.turns = turns
        self.blobs = blobs
        self.recorder = TurnRecorder(turns, blobs) if turns is not None and blobs is not None else None
        self.threads = threads
        self.admission = admission
        self.supervisor = supervisor or Supervisor(
            JobQueue(
                global_limit=settings.max_running_jobs,
                provider_limits={p.name: p.concurrency for p in settings.providers if p.concurrency},
                per_user_queued=settings.max_queued_per_user,
            ),
            interval=settings.progress_interval,
        )
        queue = self.supervisor.queue
        self.metrics = JobMetrics(
            metrics if metrics is not None else Metrics(), lambda: queue.depth, lambda: queue.running
        )
        #: Tasks running a job, with how deeply (a job may run another inside it).
        self._active: collections.Counter[asyncio.Task[Any]] = collections.Counter()
        self._idle = asyncio.Event()
        self._idle.set()
        #: Reservations of jobs not yet settled (running, or waiting for their delivery).
        self._held: set[int] = set()
        #: Cancelled jobs that were charged (their cost, for the job's log line).
        self._charged_cancels: dict[str, int] = {}
        #: Bookkeeping writes running beside their job (kept referenced until done).
        self._background: set[asyncio.Future[None]] = set()

    @contextlib.asynccontextmanager
    async def _track(self) -> AsyncIterator[None]:
        """Count work in flight, so that shutdown can wait for it before closing the database."""
        task = asyncio.current_task()
        assert task is not None
        self._active[task] += 1
        self._idle.clear()
        try:
            yield
        finally:
            self._active[task] -= 1
            if self._active[task] <= 0:
                del self._active[task]
            if not self._active:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no job runs and none is being delivered (False if the timeout passed first)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
            while self._held:  # results on their way to Discord still hold their reservations
                if loop.time() >= deadline:
                    return False
                await asyncio.sleep(IDLE_POLL)
        except TimeoutError:
            return False
        if self._background:  # bookkeeping written beside the jobs, before the database closes
            await asyncio.wait(list(self._background), timeout=max(0.0, deadline - loop.time()))
        return True

    async def abandon(self, timeout: float = 5.0) -> None:
        """At shutdown, after the grace period: cancel the jobs still running and let them unwind."""
        for task in list(self._active):
            task.cancel()
        await self.wait_idle(timeout)

    def spec_for(self, provider: str | None, model: str | None) -> ModelSpec:
        """The limits of the model the job will most likely use."""
        return self.router.candidates(provider, model)[0].spec(model)

    async def run(self, job: JobSpec) -> JobResult:
        """Admit and reserve the job's cost, run it; any failure (or cancel) refunds and is re-raised.

        The credits are spent only once the result is delivered (see delivered()).
        """
        async with self._track():
            started, job_id = time.monotonic(), self.supervisor.queue.next_id()
            try:
                result = await self._run_admitted(job, job_id)
            except SQLAlchemyError as e:  # our database, not the provider
                log.warning("job %s: database error %s", job_id, type(e).__name__)
                error = StorageUnavailable()
                self._observe(job, job_id, time.monotonic() - started, None, error)
                raise error from e
            except BaseException as e:
                self._observe(job, job_id, time.monotonic() - started, None, e)
                raise
            self._observe(job, job_id, time.monotonic() - started, result, None)
            return result

    async def _run_admitted(self, job: JobSpec, job_id: str) -> JobResult:
        """Checks, admission, then the queue and the pipeline; a failure after admission refunds.

        Everything that can refuse the job (rules, quota, cooldown, inputs, sizes) is decided before
        a byte of input is downloaded or decoded. A cancel is free until the provider has the
        request; after that the provider bills us, so the job is charged.
        """
        config = await self.admission.config(job.guild_id) if self.admission is not None else None
        self._apply_guild_defaults(job, config)
        if self.admission is not None and config is not None:
            self.admission.check_rules(self._who(job), config, job.prompt)
        await self._resolve_latest(job)
        await self._precheck(job)
        run = _Run(job_id)
        charge = await self._admit(job, config, run)
        if charge.reservation_id is not None:
            self._held.add(charge.reservation_id)
        try:
            lane = self._lane(job)
            result = await self.supervisor.run(
                job_id, job.user_id, lane, job.progress, lambda: self._start(job, charge, run)
            )
            self.supervisor.cancelled_by_user(job_id)  # a cancel that came too late to stop it
        except asyncio.CancelledError:
            # A person's cancel after the provider had the request is charged; a shutdown never is.
            if self.supervisor.cancelled_by_user(job_id) and run.sent:
                await self._failed(job, CANCELLED_CHARGED)
                await self._settle(charge, CANCELLED_CHARGED)
                self._charged_cancels[job_id] = charge.cost_cents
            else:
                await self._failed(job, "cancelled")
                await self._refund(charge, "cancelled")
            raise
        except BaseException as e:
            await self._refund(charge, type(e).__name__)
            raise
        result.charge = charge
        return result

    def _observe(
        self, job: JobSpec, job_id: str, seconds: float, result: JobResult | None, error: BaseException | None
    ) -> None:
        """Count the finished job and log one line about it (never its prompt); never fails the job."""
        try:
            provider, model = (result.provider, result.model) if result else self._labels(job, error)
            outcome = outcome_of(error)
            self.metrics.finished(provider, job.kind, outcome, seconds, error)
        except Exception:
            log.exception("could not record the metrics of job %s", job_id)
            return
        log.info(
            "job done id=%s kind=%s guild=%s user=%s provider=%s model=%s duration=%.2f outcome=%s cost=%s",
            job_id,
            job.kind,
            job.guild_id or "-",
            job.user_id,
            log_value(provider),
            log_value(model),
            seconds,
            outcome,
            credits(result.cost_cents if result else self._charged_cancels.pop(job_id, 0)),
        )

    def _labels(self, job: JobSpec, error: BaseException | None) -> tuple[str, str]:
        """Provider and model of a failed job: the failing provider's, else where it would have run."""
        provider: str | None = getattr(error, "provider", None)
        try:
            provider = provider or self._lane(job)
            model = self._route(job)[1] if job.kind != "upscale" else None
            return provider, model or self.router.get(provider).spec(None).name
        except NanoBotError:
            return provider or job.provider or "none", job.model or "-"

    def _lane(self, job: JobSpec) -> str:
        """The provider whose concurrency limit the job counts against."""
        if job.kind == "upscale":
            return self.router.upscalers(job.provider)[0].name
        provider, model = self._route(job)
        return self.router.candidates(provider, model)[0].name

    def _apply_guild_defaults(self, job: JobSpec, config: GuildConfig | None) -> None:
        """A new job with no model chosen uses the server's default model, when it set one."""
        if config is None or job.provider or job.model or job.parent is not None:
            return
        if job.kind == "upscale":
            return
        if config.default_model and any(m == config.default_model for _, m in self.router.models()):
            job.provider, job.model = config.default_provider, config.default_model

    @staticmethod
    def _who(job: JobSpec) -> Who:
        """Where the job comes from, as admission sees it."""
        return Who(job.guild_id, job.channel_id, job.user_id, job.role_ids, job.channel_nsfw)

    async def _resolve_latest(self, job: JobSpec) -> None:
        """A job on "the latest image" (/edit, /upscale without one): the channel's newest result,
        else an image of ours found in the channel (found, not downloaded; deleted results skipped)."""
        if job.find_latest is None or job.inputs or job.parent is not None:
            return
        latest = await self.threads.latest_in_channel(job.channel_id) if self.threads is not None else None
        if latest is not None:
            job.parent = latest
        else:
            job.inputs = [await job.find_latest()]

    async def _precheck(self, job: JobSpec) -> None:
        """What can refuse a job before it is charged: the conversation it continues, input counts
        and output sizes (nothing is downloaded or decoded here)."""
        if job.parent is not None and self.turns is not None:
            job.parent = await live_parent(self.turns, job.parent)
            await check_continue(self.turns, self.settings.continue_policy, job.parent, job.user_id)
        if job.kind == "upscale":
            if not job.inputs and job.parent is None:
                raise InputError("There is no image to upscale")
            if (dims := declared_dims(job)) is not None:
                check_upscale_size(*dims, job.factor, self.settings.max_output_pixels)
            return
        provider, model = self._route(job)
        candidate = self.router.candidates(provider, model)[0]
        spec = candidate.spec(model)
        replays = job.use_history and candidate.kind == "gemini" and spec.multi_turn
        with_parent = job.parent is not None and job.parent_image and not replays
        check_input_count(spec, len(job.inputs) + (1 if with_parent else 0))

    async def _admit(self, job: JobSpec, config: GuildConfig | None, run: _Run) -> Charge:
        """The server's rules and the reservation of the job's cost (no admission = free)."""
        if self.admission is None or config is None:
            return Charge(None, 0)
        provider, model = self._route(job)
        cost = await self.estimate(job, provider, model, run)
        return await self.admission.admit(
            self._who(job),
            config,
            cost_cents=cost,
            kind=job.kind,
            prompt=job.prompt,
            provider=provider,
            model=model,
        )

    async def estimate(
        self, job: JobSpec, provider: str | None, model: str | None, run: _Run | None = None
    ) -> int:
        """The job's cost in cents by the configured cost rules (remembered in run, when given)."""
        costs = self.settings.costs
        if job.kind == "upscale":
            local = self.router.upscalers(job.provider)[0] is self.router.local
            cost = costs.upscale(job.factor, local=local)
        else:
            replayed = 0
            if job.parent is not None and job.use_history and self.turns is not None:
                chain, _ = await self.turns.lineage(job.parent.id, self.settings.history_depth)
                replayed = sum(1 for turn in chain if replayable(turn))
            if run is not None:
                run.replayed = replayed
            cost = self._price(job, self.router.candidates(provider, model)[0].spec(model), replayed)
        if run is not None:
            run.base_cents = cost
        return cost

    def _price(self, job: JobSpec, spec: ModelSpec, replayed: int) -> int:
        """What a generation job costs on one model."""
        uses_parent = job.parent is not None and job.parent_image and not job.use_history
        references = len(job.inputs) + (1 if uses_parent else 0)
        resolution = job.resolution or spec.default_resolution
        return self.settings.costs.generation(spec.name, resolution, job.count, references, replayed)

    def _affordable(self, job: JobSpec, run: _Run, model: str | None) -> Callable[[ImageProvider], bool]:
        """Whether a fallback provider (asked for `model`) costs no more than the job reserved (a
        dearer one is skipped: the difference was never reserved, and it is not given away)."""

        def allow(candidate: ImageProvider) -> bool:
            return self._price(job, candidate.spec(model), run.replayed) <= run.base_cents

        return allow

    def held(self) -> frozenset[int]:
        """Reservations still owned by a job in this process (the rest of ours are settled or lost)."""
        return frozenset(self._held)

    async def _refund(self, charge: Charge, reason: str) -> None:
        """Give the reservation back; never let a refund failure hide the job's own error.

        A refund that fails (the database is down) is retried by the maintenance sweep, which
        refunds this process's reservations that no job holds any more.
        """
        self._held.discard(charge.reservation_id or 0)
        if self.admission is None:
            return
        try:
            await self.admission.refund(charge, reason)
        except Exception as e:
            log.warning("could not refund reservation %s now (%s)", charge.reservation_id, type(e).__name__)

    async def _start(self, job: JobSpec, charge: Charge, run: _Run) -> JobResult:
        """The job has its slot: record that it runs (beside the provider call), then run it."""
        if self.admission is not None and charge.reservation_id is not None:
            marking = asyncio.ensure_future(self._mark_running(self.admission, charge))
            self._background.add(marking)
            marking.add_done_callback(self._background.discard)
        return await self._run(job, run)

    def _sending(self, run: _Run) -> None:
        """The request is about to reach the provider: from now on a cancel is charged."""
        run.sent = True
        self.supervisor.mark_sent(run.job_id)

    @staticmethod
    async def _mark_running(admission: Admission, charge: Charge) -> None:
        """Best effort: a restart would call the job queued instead; never worth failing it."""
        try:
            await admission.started(charge)
        except Exception as e:
            log.warning("could not mark job %s running (%s)", charge.reservation_id, type(e).__name__)

    async def _run(self, job: JobSpec, run: _Run) -> JobResult:
        """The pipeline behind run(): download the inputs, call the provider, store and fit."""
        started = time.monotonic()
        try:
            inputs = await self._load(job.inputs)
            if job.kind == "upscale":
                outcome = await self._upscale(job, inputs, run)
            else:
                outcome = await self._generate(job, inputs, run)
        except Exception as e:
            await self._failed(job, failure_text(e))
            raise
        files, turn_id = await self._fit_and_record(job, outcome)
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
        )

    async def _fit_and_record(self, job: JobSpec, outcome: Outcome) -> tuple[list[FittedImage], int | None]:
        """Fit the images for upload (image pool) while their originals and the turn are stored.

        Both take time on a 4K result (a re-encode; hashing and writing 48 MB): side by side, the
        user waits for the longer one only. A fit that fails leaves the turn failed, not done.
        """
        images = outcome.result.images
        fitting = asyncio.ensure_future(
            fit_for_upload_async(
                [(image.data, image.mime) for image in images],
                per_file_limit=job.upload_limit,
                total_limit=DISCORD_MESSAGE_LIMIT,
            )
        )
        try:
            turn_id = await self.recorder.done(job, outcome) if self.recorder else None
        except BaseException:
            fitting.cancel()
            with contextlib.suppress(BaseException):
                await fitting
            raise
        try:
            return await fitting, turn_id
        except Exception as e:
            if self.recorder is not None:
                await self.recorder.mark_failed(turn_id, failure_text(e))
            raise

    @staticmethod
    async def _load(inputs: list[JobInput]) -> list[RawInput]:
        """The inputs' bytes: pending ones downloaded now, side by side (the job was admitted)."""

        async def one(item: JobInput) -> RawInput:
            return await item.fetch() if isinstance(item, PendingInput) else item

        return list(await asyncio.gather(*(one(item) for item in inputs)))

    def _route(self, job: JobSpec) -> tuple[str | None, str | None]:
        """Provider and model: as asked, else the parent's when it is still configured.

        The parent's model is the one that was asked for (a provider may report its own name for it).
        """
        if job.provider or job.model or job.parent is None:
            return job.provider, job.model
        parent = job.parent
        asked = parent.options.get("requested_model") or parent.model
        if any(p == parent.provider and m == asked for p, m in self.router.models()):
            return parent.provider, str(asked)
        return None, None

    async def _generate(self, job: JobSpec, inputs: list[RawInput], run: _Run) -> Outcome:
        """Imagine / edit / refine: inputs to the model's limits, history or parent image, the router."""
        provider, model = self._route(job)
        candidate = self.router.candidates(provider, model)[0]
        spec = candidate.spec(model)
        images = await self.prepare(inputs, spec)
        history: list[Turn] = []
        cut = False
        if job.parent is not None and self.threads is not None:
            if job.use_history and candidate.kind == "gemini" and spec.multi_turn:
                replay = await self.threads.history(job.parent)
                history, cut = replay.turns, replay.cut
            if not history and job.parent_image:
                parent_image = await self.threads.output_image(job.parent, 0)
                images = [*await self.prepare([raw_image(parent_image)], spec), *images]
        ratio = self._ratio(job, images, spec)
        request = GenerateRequest(
            prompt=job.prompt,
            model=model,
            images=images,
            aspect_ratio=ratio,
            resolution=job.resolution,
            count=job.count,
            history=history,
        )
        self._sending(run)
        result = await self.router.generate(
            request, provider, allow=self._affordable(job, run, model) if self.admission else None
        )
        return Outcome(result, images, ratio, cut, requested_model=spec.name)

    @staticmethod
    def _ratio(job: JobSpec, images: list[InputImage], spec: ModelSpec) -> str | None:
        """The aspect ratio to ask for; "auto" keeps the first input's shape."""
        if job.aspect_ratio != AUTO:
            return job.aspect_ratio
        first = next((i.data for i in images if i.data), None)
        if first is None:
            return None
        width, height = image_dims(first)
        return nearest_ratio(width, height, spec.aspect_ratios)

    async def _upscale(self, job: JobSpec, inputs: list[RawInput], run: _Run) -> Outcome:
        """Upscale the first input (else the parent's image) with a capable provider, else locally."""
        spec = self.router.local.spec(None)
        inputs = inputs[:1]
        if not inputs and job.parent is not None and self.threads is not None:
            inputs = [raw_image(await self.threads.output_image(job.parent, 0))]
        if not inputs:
            raise InputError("There is no image to upscale")
        width, height = image_dims(inputs[0].data)  # the header only: the declared size may lie
        check_upscale_size(width, height, job.factor, self.settings.max_output_pixels)
        [image] = await self.prepare(inputs, spec)
        self._sending(run)
        result = await self.router.upscale(UpscaleRequest(image, job.factor), job.provider)
        return Outcome(result, [image])

    async def prepare(self, inputs: list[RawInput], spec: ModelSpec) -> list[InputImage]:
        """Sniff, guard, orient and shrink each input to what the model accepts (off the loop)."""
        prepared = []
        for raw in inputs:
            image = await prepare_input_async(
                raw.data,
                name=raw.name,
                max_bytes=self.settings.max_input_bytes,
                max_pixels=self.settings.max_input_pixels,
                max_side=spec.max_input_side,
                max_out_bytes=spec.max_input_bytes,
                accept=spec.input_mimes,
            )
            prepared.append(InputImage(image.data, image.mime, raw.url, raw.name))
        return prepared

    async def _settle(self, charge: Charge, outcome: str) -> None:
        """Charge a job that will not be delivered (cancelled once the provider had it)."""
        self._held.discard(charge.reservation_id or 0)
        if self.admission is None:
            return
        try:
            await self.admission.commit(charge, outcome=outcome)
        except Exception as e:
            log.warning("could not charge reservation %s (%s)", charge.reservation_id, type(e).__name__)
        else:
            self.metrics.spent(charge.cost_cents)

    async def delete_result(self, turn: TurnRecord) -> None:
        """A result is deleted: its turn can never be shown, used or continued again, and its image
        files go unless another result still uses the same image. Deleting a deleted result again
        (its message outlived the first try) only finishes removing its files."""
        if self.turns is None:
            return
        started = utcnow()
        marked = await self.turns.mark_deleted(turn.id)
        if self.blobs is None or not (marked or turn.status == "deleted"):
            return
        hashes = [ref.sha256 for ref in (*turn.input_images, *turn.output_images)]
        used = await self.turns.blobs_in_use(hashes)
        unused = [sha for sha in dict.fromkeys(hashes) if sha not in used]
        await self.blobs.discard(unused, unused_since=started)

    async def _failed(self, job: JobSpec, error: str) -> None:
        """Leave the failed job's turn (when conversations are stored)."""
        if self.recorder is not None:
            await self.recorder.failed(job, error)

    async def delivered(self, result: JobResult, channel_id: int, message_ids: list[int]) -> None:
        """The result is posted: link the message(s) to the turn and spend the reserved credits.

        Never raises: the user already has the image. If the database fails here the reservation
        is left to the sweep (refunded: a free image rather than a charge we cannot record).
        """
        async with self._track():
            try:
                if self.turns is not None and result.turn_id is not None and message_ids:
                    await self.turns.attach_messages(result.turn_id, channel_id, message_ids)
                if self.admission is not None:
                    await self.admission.commit(result.charge)
            except Exception:
                log.exception("could not record the delivery of turn %s", result.turn_id)
                return
            finally:  # held until settled: neither the sweep nor a shutdown refunds it meanwhile
                self._held.discard(result.charge.reservation_id or 0)
            self.metrics.spent(result.cost_cents)

    async def delivery_failed(self, result: JobResult, error: str) -> None:
        """The result could not be posted: the turn is failed and nothing is spent."""
        async with self._track():
            if self.recorder is not None:
                await self.recorder.mark_failed(result.turn_id, error)
            await self._refund(result.charge, "delivery failed")
