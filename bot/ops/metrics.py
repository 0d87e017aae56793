"""A tiny in-process metrics registry rendered in the Prometheus text format 0.0.4, and the bot's metrics.

Counters, gauges (set, or read from a callback at scrape time) and histograms with fixed buckets,
each with an optional fixed set of labels. No dependency: `Metrics.render()` writes the exposition
text that `/metrics` (bot/ops/health.py) serves. Use it from the event loop (it takes no locks).
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import re
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar, cast

from bot.errors import NanoBotError, ProviderError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Seconds; image jobs take from about a second (local upscale) to minutes (4K, queued).
JOB_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0)

Key = tuple[str, ...]
C = TypeVar("C")
M = TypeVar("M", bound="_Metric[Any]")


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: integers without a dot, +Inf, -Inf, NaN."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def escape_label(value: str) -> str:
    """A label value escaped for the text format (backslash, double quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text escaped for the text format (backslash and newline only)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels_text(names: Sequence[str], values: Sequence[str]) -> str:
    """`{a="x",b="y"}`, or nothing without labels."""
    if not names:
        return ""
    pairs = ",".join(f'{n}="{escape_label(v)}"' for n, v in zip(names, values, strict=True))
    return "{" + pairs + "}"


class _Metric(Generic[C]):
    """A named family of children, one per combination of label values."""

    kind = "untyped"

    def __init__(self, name: str, help: str, labelnames: Sequence[str] = ()) -> None:
        if not NAME.match(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in labelnames:
            if not LABEL.match(label) or label.startswith("__") or label == "le":
                raise ValueError(f"invalid label name {label!r} for {name}")
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self._children: dict[Key, C] = {}
        if not self.labelnames:
            self._children[()] = self._new_child()

    def _new_child(self) -> C:
        raise NotImplementedError

    def labels(self, **values: object) -> C:
        """The child for these label values (all of the metric's labels, no others)."""
        if set(values) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(values)}")
        key = tuple(str(values[n]) for n in self.labelnames)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._new_child()
        return child

    def _only(self) -> C:
        """The child of a metric without labels."""
        if self.labelnames:
            raise ValueError(f"{self.name} has labels {self.labelnames}: use .labels(...)")
        return self._children[()]

    def _samples(self) -> Iterator[str]:
        raise NotImplementedError

    def render(self) -> Iterator[str]:
        """The family's lines: HELP, TYPE, then every sample."""
        yield f"# HELP {self.name} {escape_help(self.help)}"
        yield f"# TYPE {self.name} {self.kind}"
        yield from self._samples()


class _Value:
    """One counter or gauge value."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0


class CounterChild(_Value):
    """One labelled counter."""

    __slots__ = ()

    def inc(self, amount: float = 1.0) -> None:
        """Add a non-negative amount."""
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class GaugeChild(_Value):
    """One labelled gauge."""

    __slots__ = ()

    def set(self, value: float) -> None:
        """Set the value."""
        self.value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        """Add (or, with a negative amount, subtract)."""
        self.value += amount

    def dec(self, amount: float = 1.0) -> None:
        """Subtract."""
        self.value -= amount


class Counter(_Metric[CounterChild]):
    """A value that only goes up (resets when the process restarts)."""

    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        """Add to the counter of a metric without labels."""
        self._only().inc(amount)

    def value(self, **labels: object) -> float:
        """The current value for these label values (0 when never counted)."""
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {tuple(labels)}")
        child = self._children.get(tuple(str(labels[n]) for n in self.labelnames))
        return child.value if child is not None else 0.0

    def _samples(self) -> Iterator[str]:
        for key, child in self._children.items():
            yield f"{self.name}{_labels_text(self.labelnames, key)} {format_value(child.value)}"


class Gauge(_Metric[GaugeChild]):
    """A value that goes up and down; with `read`, it is read from a callback at scrape time."""

    kind = "gauge"

    def __init__(
        self,
        name: str,
        help: str,
        labelnames: Sequence[str] = (),
        read: Callable[[], float] | None = None,
    ) -> None:
        if read is not None and labelnames:
            raise ValueError("a gauge read from a callback has no labels")
        super().__init__(name, help, labelnames)
        self.read = read

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        """Set the gauge of a metric without labels."""
        self._only().set(value)

    def _samples(self) -> Iterator[str]:
        if self.read is not None:
            try:
                value = float(self.read())
            except Exception:
                log.debug("gauge %s could not be read", self.name, exc_info=True)
                return
            yield f"{self.name} {format_value(value)}"
            return
        for key, child in self._children.items():
            yield f"{self.name}{_labels_text(self.labelnames, key)} {format_value(child.value)}"


class HistogramChild:
    """Observations of one label combination: per-bucket counts, their sum and count."""

    __slots__ = ("bounds", "buckets", "count", "sum")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        """Record one observation (a bucket's bound is inclusive: le means <=)."""
        self.buckets[bisect.bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= it) for every bucket, ending with +Inf."""
        out: list[tuple[float, int]] = []
        running = 0
        for bound, n in zip((*self.bounds, math.inf), self.buckets, strict=True):
            running += n
            out.append((bound, running))
        return out


class Histogram(_Metric[HistogramChild]):
    """Observations counted into fixed buckets, with their sum and count."""

    kind = "histogram"

    def __init__(
        self, name: str, help: str, labelnames: Sequence[str] = (), buckets: Sequence[float] = JOB_BUCKETS
    ) -> None:
        bounds = tuple(float(b) for b in buckets if not math.isinf(b))
        if not bounds or list(bounds) != sorted(set(bounds)):
            raise ValueError(f"{name}: buckets must be increasing and not empty")
        self.bounds = bounds
        super().__init__(name, help, labelnames)

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.bounds)

    def observe(self, value: float) -> None:
        """Record one observation of a metric without labels."""
        self._only().observe(value)

    def _samples(self) -> Iterator[str]:
        names = (*self.labelnames, "le")
        for key, child in self._children.items():
            for bound, count in child.cumulative():
                labels = _labels_text(names, (*key, format_value(bound)))
                yield f"{self.name}_bucket{labels} {count}"
            labels = _labels_text(self.labelnames, key)
            yield f"{self.name}_sum{labels} {format_value(child.sum)}"
            yield f"{self.name}_count{labels} {child.count}"


class Metrics:
    """The process's registry: declare metrics once (again returns the same one), render them all."""

    def __init__(self) -> None:
        self._metrics: dict[str, _Metric[Any]] = {}

    def _add(self, metric: M) -> M:
        """Register a metric, or return the one already registered under its name."""
        existing = self._metrics.get(metric.name)
        if existing is None:
            self._metrics[metric.name] = metric
            return metric
        if type(existing) is not type(metric) or existing.labelnames != metric.labelnames:
            raise ValueError(f"{metric.name} is already registered as another {existing.kind}")
        return cast(M, existing)

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        """A counter (created on first use)."""
        return self._add(Counter(name, help, labels))

    def gauge(
        self, name: str, help: str, labels: Sequence[str] = (), read: Callable[[], float] | None = None
    ) -> Gauge:
        """A gauge (created on first use); `read` makes it read at scrape time."""
        metric = self._add(Gauge(name, help, labels, read))
        if read is not None:
            metric.read = read  # the newest owner (e.g. a rebuilt service) wins
        return metric

    def histogram(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Sequence[float] = JOB_BUCKETS
    ) -> Histogram:
        """A histogram (created on first use)."""
        return self._add(Histogram(name, help, labels, buckets))

    def get(self, name: str) -> _Metric[Any] | None:
        """A registered metric by name."""
        return self._metrics.get(name)

    def render(self) -> str:
        """Every metric in the text exposition format 0.0.4 (ends with a newline)."""
        lines = [line for metric in self._metrics.values() for line in metric.render()]
        return "\n".join(lines) + "\n" if lines else ""


# --- the bot's job metrics -------------------------------------------------------------------------


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


class JobMetrics:
    """The job pipeline's metrics, declared once on a registry."""

    def __init__(self, registry: Metrics, depth: Callable[[], float], running: Callable[[], float]) -> None:
        self.registry = registry
        self.jobs = registry.counter(
            "nanobot_jobs_total",
            "Jobs finished, by provider, kind and outcome.",
            ("provider", "kind", "outcome"),
        )
        self.duration = registry.histogram(
            "nanobot_job_duration_seconds",
            "Seconds from admission to result or failure (queue wait included).",
            ("provider", "kind"),
        )
        self.provider_errors = registry.counter(
            "nanobot_provider_errors_total",
            "Jobs that ended with a provider error, by type.",
            ("provider", "error"),
        )
        self.credits = registry.counter(
            "nanobot_credits_spent_total", "Credits spent on delivered jobs (by the configured cost rules)."
        )
        registry.gauge("nanobot_queue_depth", "Jobs waiting for a slot.", read=depth)
        registry.gauge("nanobot_jobs_running", "Jobs holding a slot.", read=running)

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
            self.credits.inc(cents / 100)
