"""The one job pipeline: inputs → provider → turn stored → results fitted for upload. No Discord here."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from functools import partial
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from bot.billing.admission import Admission, Charge, Who
from bot.billing.costs import credits
from bot.config import Settings
from bot.errors import DeliveryFailed, NanoBotError, StorageUnavailable
from bot.jobs.checks import (
    check_continue,
    check_input_count,
    check_shape,
    check_upscale_job,
    live_parent,
)
from bot.jobs.conversations import Threads
from bot.jobs.ordering import DeliveryOrder
from bot.jobs.pipeline import Pipeline
from bot.jobs.recorder import TurnRecorder
from bot.jobs.routing import Decision, JobRun, Routing
from bot.jobs.spec import (
    AUTO,
    DISCORD_FILE_LIMIT,
    DISCORD_MESSAGE_LIMIT,
    Delivery,
    JobInput,
    JobKind,
    JobResult,
    JobSpec,
    PendingInput,
    RawInput,
    raw_image,
)
from bot.jobs.supervisor import Supervisor
from bot.ops.logs import log_value
from bot.ops.metrics import Metrics, outcome_of
from bot.providers.base import ModelSpec
from bot.providers.router import Router
from bot.storage.blobs import BlobStore
from bot.storage.guilds import GuildConfig
from bot.storage.tables import utcnow
from bot.storage.turns import TurnRecord, TurnStore

log = logging.getLogger(__name__)
#: Seconds between checks, at shutdown, for results still being delivered.
IDLE_POLL = 0.05
CANCELLED_CHARGED = "cancelled after the provider started (charged)"


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
        *,
        turns: TurnStore,
        blobs: BlobStore,
        threads: Threads,
        admission: Admission,
        supervisor: Supervisor,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.router = router
        self.turns = turns
        self.blobs = blobs
        self.recorder = TurnRecorder(turns, blobs)
        self.threads = threads
        self.admission = admission
        self.supervisor = supervisor
        self.routing = Routing(settings, router, turns)
        self.pipeline = Pipeline(settings, router, self.routing, threads, self.recorder, self._sending)
        queue = supervisor.queue
        self.metrics = metrics.jobs
        self.metrics.watch_queue(lambda: queue.depth, lambda: queue.running)
        #: Tasks running a job, with how deeply (a job may run another inside it).
        self._active: collections.Counter[asyncio.Task[Any]] = collections.Counter()
        self._idle = asyncio.Event()
        self._idle.set()
        #: Reservations of jobs not yet settled (running, or waiting for their delivery).
        self._held: set[int] = set()
        #: Cancelled jobs that were charged (their cost, for the job's log line).
        self._charged_cancels: dict[str, int] = {}
        #: Each member's results are posted in the order the jobs were sent.
        self.order = DeliveryOrder()
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

    def spec_for(self, provider: str | None, model: str | None) -> ModelSpec:
        """The limits of the model the job will most likely use (autocomplete asks)."""
        return self.routing.spec_for(provider, model)

    async def abandon(self, timeout: float = 5.0) -> None:
        """At shutdown, after the grace period: cancel the jobs still running and let them unwind."""
        for task in list(self._active):
            task.cancel()
        await self.wait_idle(timeout)

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
        place = self.supervisor.hold(job_id, job.user_id, job.sent_at)  # before any await: in order
        try:
            config = await self.admission.config(job.guild_id)
            job = self.routing.with_guild_defaults(job, config).with_server(config)
            self.admission.check_rules(self._who(job), config, job.prompt)
            job = await self._precheck(await self._resolve_latest(await job.with_references()))
            run = JobRun(job_id, self.routing.decide(job))
            self._check_inputs(job, run.decision, await self.routing.look_back(job, run))
            charge = await self._admit(job, config, run)
        except BaseException:
            self.supervisor.drop(place)
            raise
        if charge.reservation_id is not None:
            self._held.add(charge.reservation_id)
        try:
            work, share = partial(self._start, job, charge, run), self.admission.jobs_at_once(config)
            result = await self.supervisor.run(place, run.decision.lane, job.progress, work, user_limit=share)
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
        return replace(result, charge=charge.with_reported(result.reported_cents))

    def _observe(
        self, job: JobSpec, job_id: str, seconds: float, result: JobResult | None, error: BaseException | None
    ) -> None:
        """Count the finished job and log one line about it (never its prompt); never fails the job."""
        try:
            provider, model = (result.provider, result.model) if result else self.routing.labels(job, error)
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

    @staticmethod
    def _who(job: JobSpec) -> Who:
        """Where the job comes from, as admission sees it."""
        return Who(job.guild_id, job.channel_id, job.user_id, job.role_ids, job.channel_nsfw)

    async def _resolve_latest(self, job: JobSpec) -> JobSpec:
        """A job on "the latest image" (/edit, /upscale without one): the channel's newest result,
        else an image of ours found in the channel (found, not downloaded; deleted results skipped)."""
        if job.find_latest is None or job.parent is not None:  # the job's inputs are its references
            return job
        latest = await self.threads.latest_in_channel(job.channel_id)
        if latest is not None:
            return replace(job, parent=latest)
        return replace(job, inputs=[await job.find_latest(), *job.inputs])

    async def _precheck(self, job: JobSpec) -> JobSpec:
        """The conversation a job continues, read afresh: refused when deleted, or someone else's
        under the `starter` policy (before anything is charged or downloaded)."""
        if job.parent is None:
            return job
        job = replace(job, parent=await live_parent(self.turns, job.parent))
        assert job.parent is not None
        await check_continue(self.turns, self.settings.continue_policy, job.parent, job.user_id)
        return job

    def _check_inputs(self, job: JobSpec, decision: Decision, replayed: int) -> None:
        """Input counts (a refine with nothing to replay sends its parent's image) and output sizes."""
        if job.kind == "upscale":
            check_upscale_job(job, self.settings.max_output_pixels)
            return
        spec = decision.spec
        replays = job.use_history and decision.kind == "gemini" and spec.multi_turn and replayed > 0
        with_parent = job.parent is not None and job.parent_image and not replays
        check_input_count(spec, len(job.inputs) + (1 if with_parent else 0))
        check_shape(spec, job)

    async def _admit(self, job: JobSpec, config: GuildConfig, run: JobRun) -> Charge:
        """The reservation of the job's cost (check_rules ran first, before anything was looked up)."""
        cost = self.routing.estimate(job, run)
        provider, model = run.decision.provider, run.decision.model
        return await self.admission.admit(
            self._who(job),
            config,
            cost_cents=cost,
            kind=job.kind,
            prompt=job.prompt,
            provider=provider,
            model=model,
        )

    def held(self) -> frozenset[int]:
        """Reservations still owned by a job in this process (the rest of ours are settled or lost)."""
        return frozenset(self._held)

    async def _refund(self, charge: Charge, reason: str) -> None:
        """Give the reservation back; never let a refund failure hide the job's own error.

        A refund that fails (the database is down) is retried by the maintenance sweep, which
        refunds this process's reservations that no job holds any more.
        """
        self._held.discard(charge.reservation_id or 0)
        try:
            await self.admission.refund(charge, reason)
        except Exception as e:
            log.warning("could not refund reservation %s now (%s)", charge.reservation_id, type(e).__name__)

    async def _start(self, job: JobSpec, charge: Charge, run: JobRun) -> JobResult:
        """The job has its slot: record that it runs (beside the provider call), then run it."""
        if charge.reservation_id is not None:
            marking = asyncio.ensure_future(self._mark_running(self.admission, charge))
            self._background.add(marking)
            marking.add_done_callback(self._background.discard)
        return await self.pipeline.run(job, run)

    def _sending(self, run: JobRun) -> None:
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

    async def _settle(self, charge: Charge, outcome: str) -> None:
        """Charge a job that will not be delivered (cancelled once the provider had it)."""
        self._held.discard(charge.reservation_id or 0)
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
        started = utcnow()
        marked = await self.turns.mark_deleted(turn.id)
        if not (marked or turn.status == "deleted"):
            return
        hashes = [ref.sha256 for ref in (*turn.input_images, *turn.output_images)]
        used = await self.turns.blobs_in_use(hashes)
        unused = [sha for sha in dict.fromkeys(hashes) if sha not in used]
        await self.blobs.discard(unused, unused_since=started)

    async def _failed(self, job: JobSpec, error: str) -> None:
        """Leave the failed job's turn."""
        await self.recorder.failed(job, error)

    async def submit(self, job: JobSpec, delivery: Delivery) -> None:
        """The one lifecycle of every job, whatever started it: checks, reservation, queue, run, then
        the delivery and the settlement (spent once posted, refunded if it never is). Failures are
        told to the user through the delivery; a cancel ends the task, as cancels do."""
        place = self.order.enter(job.user_id, job.sent_at)
        try:
            try:
                result = await self.run(job)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                if not isinstance(error, NanoBotError):
                    log.error("job failed", exc_info=error)
                await delivery.fail(error)
                return
            await self.order.turn(place, job.progress, result.provider)  # earlier results go first
            await self._deliver(result, delivery)
        finally:
            self.order.leave(place)

    async def _deliver(self, result: JobResult, delivery: Delivery) -> None:
        """Post the result through the delivery; settle the reservation by what happened."""
        try:
            posted = await delivery.deliver(result)
        except DeliveryFailed as error:
            await self.delivery_failed(result, f"delivery failed: HTTP {error.status}")
            await delivery.fail(error)
            return
        except BaseException as error:  # a network error, a timeout, a cancel: never leave it reserved
            await self.delivery_failed(result, f"delivery failed: {type(error).__name__}")
            raise
        if posted is None:
            await self.delivery_failed(result, "delivery failed: no channel")
            return
        await self.delivered(result, posted.channel_id, list(posted.message_ids))

    async def delivered(self, result: JobResult, channel_id: int, message_ids: list[int]) -> None:
        """The result is posted: link the message(s) to the turn and spend the reserved credits.

        Never raises: the user already has the image. If the database fails here the reservation
        is left to the sweep (refunded: a free image rather than a charge we cannot record).
        """
        async with self._track():
            try:
                if result.turn_id is not None and message_ids:
                    await self.turns.attach_messages(result.turn_id, channel_id, message_ids)
                await self.admission.commit(result.charge, turn_id=result.turn_id)
            except Exception:
                log.exception("could not record the delivery of turn %s", result.turn_id)
                return
            finally:  # held until settled: neither the sweep nor a shutdown refunds it meanwhile
                self._held.discard(result.charge.reservation_id or 0)
            self.metrics.spent(result.cost_cents)

    async def delivery_failed(self, result: JobResult, error: str) -> None:
        """The result could not be posted: the turn is failed and nothing is spent."""
        async with self._track():
            await self.recorder.mark_failed(result.turn_id, error)
            await self._refund(result.charge, "delivery failed")
