"""The bot's Prometheus metrics on prometheus-client: one registry per bot, its series, scrape-time readings.

Each bot owns a `CollectorRegistry` (never the process-wide REGISTRY: tests start many bots in one
process) holding the standard process, garbage-collector and platform collectors, the job pipeline's
series (`JobMetrics`), the provider layer's (`ProviderMetrics`, which implements the hooks of
bot.providers.telemetry), and series read from the bot when Prometheus scrapes (`Readings`: circuit
states, the gateway, readiness, the operator's budget). Nothing here reads the database while
rendering: /metrics (bot/ops/health.py) first awaits `Metrics.refresh()`, whose reads are time-bounded
and keep their last value when the database does not answer.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import (
    choose_encoder,
)

from bot import __version__
from bot.billing.costs import CENTS
from bot.billing.rules import operator_check
from bot.billing.store import QuotaStore
from bot.errors import NanoBotError, ProviderError
from bot.providers.router import ProviderStatus

log = logging.getLogger(__name__)

#: Seconds; image jobs take from about a second (local upscale) to minutes (4K, queued).
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: Seconds; one exchange with a provider's API, from a quick refusal to a 4K image made in minutes.
REQUEST_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
#: A breaker's states, each a sample of nanobot_provider_circuit_state (1 for the current one).
STATES = ("closed", "open", "half-open")
#: Seconds a scrape waits for the database before it keeps the last value read.
REFRESH_TIMEOUT = 2.0
#: Reads the operator's credits spent today (committed and reserved).
SpentReader = Callable[[], Awaitable[float]]


@dataclass(frozen=True, slots=True)
class GatewayReading:
    """The gateway as the bot sees it: shards connected, shards in this process, each shard's latency."""

    ready: int
    total: int
    #: (shard id, seconds between heartbeat and ack); not finite before a shard's first heartbeat.
    latencies: tuple[tuple[int, float], ...] = ()

    def mean_latency(self) -> float | None:
        """The mean of the shards' measured latencies in seconds, or None when none is measured yet."""
        finite = [seconds for _, seconds in self.latencies if math.isfinite(seconds)]
        return sum(finite) / len(finite) if finite else None


#: Reads the gateway at scrape time (the bot's `gateway_status`).
Gateway = Callable[[], GatewayReading]


def outcome_of(error: BaseException | None) -> str:
    """The job's outcome label: ok, cancelled, the error's own outcome, or error for anything else (bugs)."""
    if error is None:
        return "ok"
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return error.outcome if isinstance(error, NanoBotError) else "error"


def error_label(error: ProviderError) -> str:
    """A provider error's label in nanobot_provider_errors_total (SafetyBlocked → safety_blocked)."""
    return error.metric_label


async def operator_spent(quotas: QuotaStore) -> float:
    """The operator's credits committed and reserved today: the counter OPERATOR_DAILY_BUDGET limits."""
    check = operator_check(None)
    usage = await quotas.usage(check.guild_id, check.subject, check.window)
    return (usage.used_cents + usage.reserved_cents) / CENTS


class JobMetrics:
    """The job pipeline's series: jobs by outcome, their duration, provider errors, credits, the queue."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.jobs = Counter(
            "nanobot_jobs_total",
            "Jobs finished, by provider, kind and outcome.",
            ("provider", "kind", "outcome"),
            registry=registry,
        )
        self.duration = Histogram(
            "nanobot_job_duration_seconds",
            "Seconds from admission to result or failure (queue wait included).",
            ("provider", "kind"),
            buckets=JOB_BUCKETS,
            registry=registry,
        )
        self.provider_errors = Counter(
            "nanobot_provider_errors_total",
            "Jobs that ended with a provider error, by type.",
            ("provider", "error"),
            registry=registry,
        )
        self.credits = Counter(
            "nanobot_credits_spent_total",
            "Credits spent on delivered jobs (by the configured cost rules).",
            registry=registry,
        )
        self.queue_depth = Gauge("nanobot_queue_depth", "Jobs waiting for a slot.", registry=registry)
        self.running = Gauge("nanobot_jobs_running", "Jobs holding a slot.", registry=registry)

    def watch_queue(self, depth: Callable[[], float], running: Callable[[], float]) -> None:
        """Read the queue's depth and running jobs at scrape time (the newest queue wins)."""
        self.queue_depth.set_function(depth)
        self.running.set_function(running)

    def finished(
        self, provider: str, kind: str, outcome: str, seconds: float, error: BaseException | None
    ) -> None:
        """Count one finished job (and its provider error, when it ended with one)."""
        self.jobs.labels(provider=provider, kind=kind, outcome=outcome).inc()
        self.duration.labels(provider=provider, kind=kind).observe(seconds)
        if isinstance(error, ProviderError):
            self.provider_errors.labels(provider=provider, error=error_label(error)).inc()

    def spent(self, cents: int) -> None:
        """Credits spent on a delivered job."""
        if cents > 0:
            self.credits.inc(cents / CENTS)


class ProviderMetrics:
    """The provider layer's series; the HTTP client, the retry policy and the key rings report here."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.request_duration = Histogram(
            "nanobot_provider_request_duration_seconds",
            "Seconds of each HTTP exchange with a provider's API (every attempt, answered or failed).",
            ("provider",),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.retries = Counter(
            "nanobot_provider_retries_total",
            "Provider calls tried again after a transient failure.",
            ("provider",),
            registry=registry,
        )
        self.key_rests = Counter(
            "nanobot_provider_key_rests_total",
            "API keys set aside for a while (rate limited, out of credits or refused).",
            ("provider",),
            registry=registry,
        )

    def request_done(self, provider: str, seconds: float) -> None:
        """One HTTP exchange with a provider's API took `seconds`."""
        self.request_duration.labels(provider=provider).observe(seconds)

    def retried(self, provider: str) -> None:
        """A failed attempt is about to be tried again."""
        self.retries.labels(provider=provider).inc()

    def key_rested(self, provider: str) -> None:
        """A key was set aside."""
        self.key_rests.labels(provider=provider).inc()


def _family(name: str, help: str, labels: Iterable[str] = ()) -> GaugeMetricFamily:
    """An empty gauge family (what `describe` declares and `collect` fills)."""
    return GaugeMetricFamily(name, help, labels=list(labels))


class Readings:
    """Series read from the bot when Prometheus scrapes: never the database (see Metrics.refresh)."""

    def __init__(self) -> None:
        self.circuits: Callable[[], Iterable[ProviderStatus]] = tuple  # no providers until watched
        self.gateway: Gateway | None = None
        #: OPERATOR_DAILY_BUDGET in credits (None: no budget, no sample).
        self.budget: float | None = None
        #: The operator's credits spent today, as last read from the database (None: never read).
        self.spent: float | None = None
        #: Whether /readyz answered 200 at the last scrape (None: not checked yet).
        self.ready: bool | None = None

    def describe(self) -> Iterator[Metric]:
        """The families, without samples (the registry checks their names for clashes)."""
        yield from self._families()

    def _families(self) -> tuple[GaugeMetricFamily, ...]:
        """Every family this collector writes, empty."""
        return (
            _family(
                "nanobot_provider_circuit_state",
                "A provider's breaker: 1 for its current state (closed, open, half-open), 0 for the others.",
                ("provider", "state"),
            ),
            _family(
                "nanobot_provider_consecutive_failures",
                "Provider faults in a row (the breaker opens at BREAKER_FAILURES).",
                ("provider",),
            ),
            _family("nanobot_gateway_shards_ready", "Shards with an open gateway connection."),
            _family("nanobot_gateway_shards", "Shards run by this process."),
            _family(
                "nanobot_gateway_latency_seconds",
                "Seconds between a gateway heartbeat and its acknowledgement, per shard.",
                ("shard",),
            ),
            _family("nanobot_ready", "1 when the bot can serve (gateway connected and database answering)."),
            _family("nanobot_operator_budget_credits", "OPERATOR_DAILY_BUDGET (absent when unset)."),
            _family(
                "nanobot_operator_spent_credits",
                "Credits charged today against the operator's budget (committed and reserved).",
            ),
        )

    def collect(self) -> Iterator[Metric]:
        """Every family with its current samples; a source that fails leaves its family empty."""
        circuit, failures, ready, total, latency, up, budget, spent = self._families()
        try:
            for status in self.circuits():
                for state in STATES:
                    circuit.add_metric([status.name, state], 1.0 if status.state == state else 0.0)
                failures.add_metric([status.name], status.consecutive_failures)
        except Exception:
            log.debug("the circuit states could not be read", exc_info=True)
        try:
            if self.gateway is not None:
                reading = self.gateway()
                ready.add_metric([], reading.ready)
                total.add_metric([], reading.total)
                for shard, seconds in reading.latencies:
                    if math.isfinite(seconds):
                        latency.add_metric([str(shard)], seconds)
        except Exception:
            log.debug("the gateway could not be read", exc_info=True)
        if self.ready is not None:
            up.add_metric([], 1.0 if self.ready else 0.0)
        if self.budget is not None:
            budget.add_metric([], self.budget)
        if self.spent is not None:
            spent.add_metric([], self.spent)
        yield from (circuit, failures, ready, total, latency, up, budget, spent)


class Metrics:
    """One bot's registry and every series on it; `render()` is what /metrics serves."""

    def __init__(self, version: str = __version__) -> None:
        # `_created` samples double every counter and histogram for a timestamp dashboards never use.
        # prometheus-client only offers a process-wide switch; it is flipped here, when a bot builds
        # its registry, rather than at import time (the bot wants it off in every registry it makes).
        disable_created_metrics()
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        build = Gauge(
            "nanobot_build_info", "The running version (always 1).", ("version",), registry=self.registry
        )
        build.labels(version=version).set(1)
        self.jobs = JobMetrics(self.registry)
        self.providers = ProviderMetrics(self.registry)
        self.readings = Readings()
        self.registry.register(self.readings)
        self._read_spent: SpentReader | None = None

    def watch_router(self, status: Callable[[], Iterable[ProviderStatus]]) -> None:
        """Read the providers' breakers at scrape time (Router.status)."""
        self.readings.circuits = status

    def watch_gateway(self, gateway: Gateway) -> None:
        """Read the gateway's shards and latencies at scrape time."""
        self.readings.gateway = gateway

    def watch_operator(self, budget: float | None, read_spent: SpentReader) -> None:
        """Show the operator's daily budget, and what is spent of it as refresh() last read it."""
        self.readings.budget = budget
        self._read_spent = read_spent

    def set_ready(self, ready: bool) -> None:
        """Record the readiness found by the scrape's health check."""
        self.readings.ready = ready

    async def refresh(self) -> None:
        """Read what lives in the database, within REFRESH_TIMEOUT; on failure the last value stays."""
        if self._read_spent is None:
            return
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                self.readings.spent = await self._read_spent()
        except Exception as e:  # a database outage: /readyz says so; the metric keeps its last value
            log.debug("operator credits not refreshed (%s)", type(e).__name__)

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """Every series, and its content type, in the format the scraper's Accept header asks for.

        Without one (curl, an old scraper) that is the classic text format 0.0.4; Prometheus itself
        asks for OpenMetrics.
        """
        encoder, content_type = choose_encoder(accept)
        return encoder(self.registry), content_type
