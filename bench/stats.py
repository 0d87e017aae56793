"""Percentiles, the loop-lag ticker, memory readings, targets, the printed table and the JSON report."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import gc
import json
import math
import os
import platform
import resource
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

Metrics = dict[str, float | int | None]

NOT_BUILT = "n/a (not built yet)"
#: metric → (label, unit) for the table; a metric missing here is printed under its own name.
LABELS: dict[str, tuple[str, str]] = {
    "commands": ("concurrent commands", ""),
    "jobs": ("concurrent jobs", ""),
    "ack_p50_ms": ("ack latency p50", "ms"),
    "ack_p99_ms": ("ack latency p99", "ms"),
    "ack_max_ms": ("ack latency max", "ms"),
    "solo_overhead_p50_ms": ("overhead p50, one at a time", "ms"),
    "solo_overhead_p99_ms": ("overhead p99, one at a time", "ms"),
    "solo_e2e_p50_ms": ("end to end p50, one at a time", "ms"),
    "solo_provider_p50_ms": ("provider time p50, one at a time", "ms"),
    "solo_floor_ms": ("floor measured between those jobs", "ms"),
    "solo_overhead_floor_ratio": ("overhead p50 / floor, one at a time", "×"),
    "overhead_p50_ms": ("overhead p50, all at once", "ms"),
    "overhead_p99_ms": ("overhead p99, all at once", "ms"),
    "e2e_p50_ms": ("end to end p50, all at once", "ms"),
    "references_mib": ("the 14 references, bytes", "MiB"),
    "previews_shown": ("jobs whose progress showed a thought image", ""),
    "provider_p50_ms": ("provider time p50, all at once", "ms"),
    "overhead_floor_ratio": ("overhead p50 / floor p50, all at once", "×"),
    "loop_lag_p99_ms": ("event-loop lag p99", "ms"),
    "loop_lag_max_ms": ("event-loop lag max", "ms"),
    "jobs_per_s": ("jobs per second", "/s"),
    "rss_start_mib": ("resident memory at start", "MiB"),
    "peak_rss_mib": ("peak resident memory", "MiB"),
    "provider_output_mib": ("provider's image", "MiB"),
    "single_ms": ("decode+encode, one image (median)", "ms"),
    "single_min_ms": ("decode+encode, one image (min)", "ms"),
    "burst_p50_ms": ("decode+encode p50, N at once", "ms"),
    "burst_p99_ms": ("decode+encode p99, N at once", "ms"),
    "input_mib": ("input PNG", "MiB"),
    "output_q90_mib": ("JPEG q90 output", "MiB"),
    "pairs": ("reserve+commit pairs per phase", ""),
    "concurrency": ("in flight at once (N)", ""),
    "pairs_per_s": ("reserve+commit pairs, one at a time", "/s"),
    "pair_p50_ms": ("reserve+commit p50, one at a time", "ms"),
    "pair_p99_ms": ("reserve+commit p99, one at a time", "ms"),
    "concurrent_pairs_per_s": ("reserve+commit pairs, N at once", "/s"),
    "concurrent_pair_p99_ms": ("reserve+commit p99, N at once", "ms"),
    "conversations": ("8-turn conversations per phase", ""),
    "conversations_per_s": ("conversations, one at a time", "/s"),
    "ops_per_s": ("store operations, one at a time", "/s"),
    "history_p50_ms": ("8-turn history load p50, one at a time", "ms"),
    "concurrent_conversations_per_s": ("conversations, N at once", "/s"),
    "concurrent_ops_per_s": ("store operations, N at once", "/s"),
    "concurrent_history_p50_ms": ("8-turn history load p50, N at once", "ms"),
    "members": ("members", ""),
    "jobs_per_member": ("jobs per member", ""),
    "queue_limit": ("MAX_QUEUED_PER_USER", ""),
    "jobs_at_once": ("jobs at once per member (default)", ""),
    "accepted": ("accepted (not refused)", ""),
    "delivered": ("delivered", ""),
    "refused": ("refused", ""),
    "failed": ("failed or lost", ""),
    "undelivered": ("not delivered", ""),
    "e2e_p99_ms": ("end to end p99, all at once", "ms"),
    "ideal_jobs_per_s": ("jobs per second the limits allow", "/s"),
    "ideal_ratio": ("jobs per second / what the limits allow", "×"),
    "order_inversions": ("results out of order (inverted pairs)", ""),
    "members_out_of_order": ("members with results out of order", ""),
}
#: Refusals are counted per kind under this prefix and the refusal's title ("refused_queue_full").
REFUSED_PREFIX = "refused_"
#: Figures measured again on PostgreSQL carry this prefix (and the SQLite figure's label).
PG_PREFIX = "pg_"


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile with linear interpolation between ranks (None for no values)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def ms(seconds: float | None) -> float | None:
    """Seconds as milliseconds with two decimals."""
    return None if seconds is None else round(seconds * 1000, 2)


class LoopMonitor:
    """A ticker in the running loop: how late each 10 ms sleep wakes up (the loop's lag)."""

    def __init__(self, interval: float = 0.010) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopMonitor:
        self._task = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _tick(self) -> None:
        """Sleep, note how late the wake-up was, repeat."""
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await asyncio.sleep(self.interval)
            self.lags.append(max(0.0, loop.time() - started - self.interval))

    def mark(self) -> int:
        """A position to measure lag from."""
        return len(self.lags)

    def lag_metrics(self, since: int) -> Metrics:
        """p99 and max lag since a mark, in milliseconds."""
        lags = self.lags[since:]
        return {"loop_lag_p99_ms": ms(percentile(lags, 99)), "loop_lag_max_ms": ms(max(lags, default=None))}


def reset_peak_rss() -> bool:
    """Start a scenario from a clean slate: free what earlier ones left, reset the peak mark.

    Earlier scenarios leave cyclic garbage and free-but-unreturned malloc arenas (worker threads
    get their own) that would otherwise count towards the next scenario's figures. Writing 5 to
    clear_refs resets the kernel's peak-RSS mark, so ru_maxrss covers only what follows (Linux ≥ 4.0).
    """
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def rss_mib(*, peak: bool = False) -> float:
    """Current resident memory (/proc/self/status), or the peak (ru_maxrss, KiB on Linux), in MiB."""
    if peak:
        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {name: _version(name) for name in ("discord.py", "aiohttp", "pillow")}
    return {
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **versions,
    }


def revision() -> dict[str, Any]:
    """The commit measured, and how many files differed from it (others may be mid-edit)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"commit": None, "changed_files": None}
    return {"commit": commit, "changed_files": len(status.splitlines())}


def _version(name: str) -> str | None:
    """An installed distribution's version."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Target:
    """A goal printed next to a figure (never asserted)."""

    scenario: str
    metric: str
    limit: float
    text: str
    inclusive: bool = False  # ≤ rather than < (≥ rather than > for a floor)
    floor: bool = False  # the value must reach the limit rather than stay under it

    def met(self, value: float | None) -> bool | None:
        """Whether the value meets the goal (None when there is no value)."""
        if value is None:
            return None
        if self.floor:
            return value >= self.limit if self.inclusive else value > self.limit
        return value <= self.limit if self.inclusive else value < self.limit

    def bound(self) -> str:
        """ "< 100", "≤ 1.3" or "≥ 0.8"."""
        signs = (">", "≥") if self.floor else ("<", "≤")
        return f"{signs[self.inclusive]} {self.limit:g}"


TARGETS: tuple[Target, ...] = (
    Target("ack", "ack_p99_ms", 100, "acknowledgement p99 < 100 ms with 200 concurrent commands"),
    Target("overhead-4k-png", "solo_overhead_floor_ratio", 1.1, "4K PNG fit ≤ 1.1× the floor", True),
    Target("overhead-4k-png", "overhead_floor_ratio", 1.1, "4K PNG fit ≤ 1.1× the floor, N at once", True),
    Target(
        "overhead-4k-jpeg",
        "solo_overhead_p50_ms",
        50,
        "4K JPEG pass-through overhead ≤ 50 ms (the bytes fit as they are)",
        True,
    ),
    Target("overhead-4k-png", "loop_lag_p99_ms", 50, "event-loop lag p99 < 50 ms during 50 4K jobs"),
    Target("overhead-4k-jpeg", "loop_lag_p99_ms", 50, "event-loop lag p99 < 50 ms during 50 4K jobs"),
    Target("overhead-4k-png", "peak_rss_mib", 1024, "peak memory < 1 GiB for 50 concurrent 4K jobs"),
    Target("overhead-4k-jpeg", "peak_rss_mib", 1024, "peak memory < 1 GiB for 50 concurrent 4K jobs"),
    Target("members", "undelivered", 0, "every member's job delivered (200 members, one job each)", True),
    Target("members", "e2e_p99_ms", 3000, "end to end p99 ≤ 3.0 s for a 2-s provider", True),
    Target("members", "ack_p99_ms", 100, "acknowledgement p99 < 100 ms with 200 members at once"),
    Target("members", "loop_lag_p99_ms", 50, "event-loop lag p99 < 50 ms with 200 members at once"),
    Target("members", "peak_rss_mib", 1024, "peak memory < 1 GiB with 200 members at once"),
    Target("backlog", "failed", 0, "no accepted job lost", True),
    Target("backlog", "order_inversions", 0, "each member's results in the order sent", True),
    Target("backlog", "ideal_ratio", 0.8, "jobs per second ≥ 80% of what the limits allow", True, floor=True),
    Target("backlog", "loop_lag_p99_ms", 50, "event-loop lag p99 < 50 ms with 3 × 200 jobs"),
    Target("backlog", "peak_rss_mib", 1024, "peak memory < 1 GiB with 3 × 200 jobs"),
    Target("references-14", "failed", 0, "every 14-reference job delivered with its 14 references", True),
    Target("references-14", "loop_lag_p99_ms", 50, "event-loop lag p99 < 50 ms with 14-reference jobs"),
    Target("streamed", "failed", 0, "every streamed job delivered", True),
    Target("streamed", "loop_lag_p99_ms", 50, "event-loop lag p99 < 50 ms with streamed jobs"),
)


def add_floor_ratios(results: dict[str, dict[str, Any]]) -> None:
    """Overhead p50 of the 4K scenarios as a multiple of the Pillow floor (None without a floor)."""
    floor = results.get("floor", {}).get("metrics", {})
    for name in ("overhead-4k-png", "overhead-4k-jpeg"):
        metrics = results.get(name, {}).get("metrics")
        if metrics is None:
            continue
        # The floor measured between the solo jobs, at the same moment, is the fairer base.
        single = metrics.get("solo_floor_ms") or floor.get("single_ms")
        metrics["solo_overhead_floor_ratio"] = _ratio(metrics.get("solo_overhead_p50_ms"), single)
        metrics["overhead_floor_ratio"] = _ratio(metrics.get("overhead_p50_ms"), floor.get("burst_p50_ms"))


def _ratio(value: float | None, base: float | None) -> float | None:
    """value / base with three decimals."""
    return None if value is None or not base else round(value / base, 3)


def evaluate(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Every target that applies to a scenario that ran, with its value and verdict."""
    out = []
    for target in TARGETS:
        if target.scenario not in results:
            continue
        value = results[target.scenario]["metrics"].get(target.metric)
        out.append(
            {
                "scenario": target.scenario,
                "metric": target.metric,
                "target": target.text,
                "limit": target.limit,
                "inclusive": target.inclusive,
                "floor": target.floor,
                "value": value,
                "met": target.met(value),
            }
        )
    return out


def _verdict(target: Target, value: float | None) -> str:
    """ "< 100 ✓", "≤ 1.3 ✗" or the bound alone when there is nothing to compare."""
    met = target.met(value)
    mark = "" if met is None else (" ✓" if met else " ✗")
    return target.bound() + mark


def _value(value: float | None, unit: str, built: bool) -> str:
    """A figure with its unit, or n/a."""
    if value is None:
        return "n/a" if built else NOT_BUILT
    if isinstance(value, int) or unit == "":
        return f"{value:g}"
    return f"{value:,.3f} {unit}" if unit == "×" else f"{value:,.1f} {unit}"


def table(report: dict[str, Any]) -> str:
    """The figures as a plain-text table, with targets and ✓/✗ beside them."""
    m = report["machine"]
    lines = [
        f"machine: {m['nproc']} CPU(s), {m['cpu']}; Python {m['python']}, "
        f"discord.py {m['discord.py']}, aiohttp {m['aiohttp']}, Pillow {m['pillow']}",
        f"commit {report['revision']['commit']} with {report['revision']['changed_files']} changed files; "
        f"load average (1 min) before: {m['loadavg_before']}, after: {m['loadavg_1m']}"
        + (
            "  ← other work was running: figures are noisy"
            if max(m["loadavg_before"], m["loadavg_1m"]) > 1.5
            else ""
        ),
        "",
        f"{'scenario':<18} {'metric':<40} {'value':>22}   target",
        "-" * 100,
    ]
    targets = {(t.scenario, t.metric): t for t in TARGETS}
    for name, result in report["scenarios"].items():
        first = True
        for metric, value in result["metrics"].items():
            label, unit = _label(metric)
            target = targets.get((name, metric))
            verdict = _verdict(target, value) if target else ""
            shown = _value(value, unit, result["built"])
            lines.append(f"{name if first else '':<18} {label:<40} {shown:>22}   {verdict}".rstrip())
            first = False
        lines.append("")
    lines.append(f"process peak resident memory: {report['process_peak_rss_mib']:.1f} MiB")
    lines += _summary(report)
    return "\n".join(lines)


def _label(metric: str) -> tuple[str, str]:
    """The table's label and unit of a metric; PostgreSQL repeats are marked "pg:"."""
    if metric.startswith(PG_PREFIX) and (base := metric.removeprefix(PG_PREFIX)) in LABELS:
        label, unit = LABELS[base]
        return f"pg: {label}", unit
    if metric not in LABELS and metric.startswith(REFUSED_PREFIX):
        return f"  refused: {metric.removeprefix(REFUSED_PREFIX).replace('_', ' ')}", ""
    return LABELS.get(metric, (metric, ""))


def _summary(report: dict[str, Any]) -> list[str]:
    """The targets missed and the failures, spelled out."""
    lines = []
    missed = [t for t in report["targets"] if t["met"] is False]
    unknown = [t for t in report["targets"] if t["met"] is None]
    if missed:
        lines.append("targets missed:")
        lines += [f"  ✗ {t['scenario']}: {t['target']} (got {t['value']})" for t in missed]
    if unknown:
        lines.append("targets not measured in this run:")
        lines += [f"  ? {t['scenario']}: {t['target']}" for t in unknown]
    if report["failures"]:
        lines.append(f"FAILED INTERACTIONS ({len(report['failures'])}):")
        lines += [f"  ! {f}" for f in report["failures"][:50]]
        if len(report["failures"]) > 50:
            lines.append(f"  ... and {len(report['failures']) - 50} more (all in the JSON)")
    return lines


def write_json(report: dict[str, Any], path: Path) -> None:
    """The report as JSON (null for every figure that could not be measured)."""
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
