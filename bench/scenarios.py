"""The scenarios (database ones: bench.db, load ones: bench.load): a fresh fake Discord, provider and
real bot each (bench.harness); measure."""

from __future__ import annotations

import asyncio
import io
import statistics
import time
from collections.abc import Callable
from typing import Any

from PIL import Image

from bench.base import Config, Outcome, Scenario
from bench.db import db_conversation, db_quota
from bench.fakes import MIB, Assets, BenchRelay, TimedProvider
from bench.harness import Job, Session, burst, gemini, session
from bench.load import backlog, members
from bench.native import references, streamed
from bench.stats import LoopMonitor, Metrics, ms, percentile, reset_peak_rss, rss_mib
from tests.fakes.discord.payloads import JSON

DISCORD_FILE_LIMIT = 10 * MIB


async def one_by_one(
    s: Session, prefix: str, count: int, options: dict[str, Any], floor_png: bytes | None = None
) -> tuple[list[Job], list[float]]:
    """The same jobs, each started when the previous one is done; with floor_png, a Pillow floor
    measured before each job (same moment, same machine load: the ratio survives a busy machine)."""
    jobs: list[Job] = []
    floors: list[float] = []
    for n in range(count):
        if floor_png is not None:
            started = time.perf_counter()
            await asyncio.to_thread(floor_once, floor_png)
            floors.append(time.perf_counter() - started)
        jobs += await burst(s, f"{prefix}{n}x", 1, options)
    return jobs, floors


def check_jobs(s: Session, jobs: list[Job], check: Callable[[JSON], str | None], what: str) -> None:
    """Note every job that failed or whose reply is not the image it should be."""
    for job in jobs:
        problem = job.error
        if problem is None and job.message is not None:
            attachments = job.message.get("attachments") or []
            if not attachments:
                embeds = job.message.get("embeds") or [{}]
                problem = f"reply has no image: {embeds[0].get('title')!r} {embeds[0].get('description')!r}"
            else:
                problem = check(attachments[0])
        if problem is not None:
            s.failures.append(f"{what} job {job.tag}: {problem}")


def overheads(s: Session, jobs: list[Job]) -> list[float]:
    """Per job: end to end minus the provider's own time."""
    return [e2e - s.provider.timings.get(job.tag, 0.0) for job in jobs if (e2e := job.e2e) is not None]


def jobs_per_second(jobs: list[Job]) -> float | None:
    """Completed jobs over the span from the first dispatch to the last reply."""
    done = [j.done_at for j in jobs if j.done_at is not None]
    if not done:
        return None
    span = max(done) - min(j.handle.created_at for j in jobs)
    return round(len(done) / span, 2) if span > 0 else None


def job_metrics(s: Session, jobs: list[Job], prefix: str = "") -> Metrics:
    """Overhead p50/p99 (and end-to-end and provider p50) of a set of jobs."""
    over = overheads(s, jobs)
    e2e = [e for j in jobs if (e := j.e2e) is not None]
    provider = [s.provider.timings.get(j.tag, 0.0) for j in jobs if j.e2e is not None]
    return {
        f"{prefix}overhead_p50_ms": ms(percentile(over, 50)),
        f"{prefix}overhead_p99_ms": ms(percentile(over, 99)),
        f"{prefix}e2e_p50_ms": ms(percentile(e2e, 50)),
        f"{prefix}provider_p50_ms": ms(percentile(provider, 50)),
    }


def expect(mimes: tuple[str, ...], size: int | None = None) -> Callable[[JSON], str | None]:
    """A check of the uploaded attachment: its type, and its exact size for a pass-through."""

    def check(att: JSON) -> str | None:
        if att.get("content_type") not in mimes:
            return f"uploaded {att.get('content_type')}, expected {' or '.join(mimes)}"
        if att["size"] > DISCORD_FILE_LIMIT:
            return f"uploaded {att['size']} bytes, over Discord's 10 MiB"
        if size is not None and att["size"] != size:
            return f"uploaded {att['size']} bytes, not the provider's {size} untouched"
        return None

    return check


# -- scenarios -------------------------------------------------------------------------------------
async def ack(config: Config, assets: Assets) -> Outcome:
    """N concurrent /imagine against a provider with a fixed delay: acknowledgement and loop lag."""
    reset_peak_rss()
    start = rss_mib()
    provider, entry = gemini(assets)
    provider.delay = config.delay
    async with session(provider, entry, config) as s:
        mark = s.monitor.mark()
        jobs = await burst(s, "ack", config.commands, {})
        lag = s.monitor.lag_metrics(mark)
    check_jobs(s, jobs, expect(("image/png",), len(assets.png_1k)), "ack")
    acks = [j.handle.ack_latency for j in jobs if j.handle.ack_latency is not None]
    metrics: Metrics = {
        "commands": config.commands,
        "ack_p50_ms": ms(percentile(acks, 50)),
        "ack_p99_ms": ms(percentile(acks, 99)),
        "ack_max_ms": ms(max(acks, default=None)),
        **lag,
        **job_metrics(s, jobs),
        "jobs_per_s": jobs_per_second(jobs),
        "rss_start_mib": start,
        "peak_rss_mib": rss_mib(peak=True),
    }
    return Outcome(metrics, s.failures)


async def measure_overhead(
    config: Config,
    provider: TimedProvider,
    entry: dict[str, Any],
    options: dict[str, Any],
    check: Callable[[JSON], str | None],
    solo: int,
    count: int,
    name: str,
    floor_png: bytes | None = None,
) -> Outcome:
    """A few jobs one at a time (pure overhead), then `count` at once (overhead under load)."""
    reset_peak_rss()
    start = rss_mib()
    async with session(provider, entry, config) as s:
        alone, floors = await one_by_one(s, "solo", solo, options, floor_png)
        mark = s.monitor.mark()
        together = await burst(s, "job", count, options)
        lag = s.monitor.lag_metrics(mark)
    check_jobs(s, alone + together, check, name)
    metrics: Metrics = {
        "jobs": count,
        **job_metrics(s, alone, "solo_"),
        **job_metrics(s, together),
        **lag,
        "jobs_per_s": jobs_per_second(together),
        "rss_start_mib": start,
        "peak_rss_mib": rss_mib(peak=True),
    }
    if floors:
        metrics["solo_floor_ms"] = ms(statistics.median(floors))
    return Outcome(metrics, s.failures)


async def overhead_1k(config: Config, assets: Assets) -> Outcome:
    """Instant provider, 1K PNG outputs that fit: the bot's own cost per job."""
    provider, entry = gemini(assets)
    check = expect(("image/png",), len(assets.png_1k))
    return await measure_overhead(
        config, provider, entry, {}, check, config.solo_1k, config.commands, "overhead-1k"
    )


def relay(output_format: str, data: bytes) -> tuple[BenchRelay, dict[str, Any]]:
    """The relay serving one pre-made 4096² image for nano-banana-2 at 4K, and its entry."""
    provider = BenchRelay(flavor="relay", output_format=output_format)
    provider.noisy = output_format == "PNG"
    provider.premade[(4096, 4096, output_format)] = data
    return provider, {"name": "relay", "kind": "openai-images", "models": ["nano-banana-2"]}


async def overhead_4k_png(config: Config, assets: Assets) -> Outcome:
    """A 48 MiB noisy 4K PNG per job: it must be re-encoded to fit 10 MiB."""
    provider, entry = relay("PNG", assets.noisy_png_4k)
    check = expect(("image/jpeg", "image/webp"))
    outcome = await measure_overhead(
        config,
        provider,
        entry,
        {"resolution": "4K"},
        check,
        config.solo_4k,
        config.jobs_4k,
        "4k-png",
        assets.noisy_png_4k,
    )
    outcome.metrics["provider_output_mib"] = round(len(assets.noisy_png_4k) / MIB, 2)
    return outcome


async def overhead_4k_jpeg(config: Config, assets: Assets) -> Outcome:
    """A 4K JPEG that fits as it is: it must pass through untouched."""
    provider, entry = relay("JPEG", assets.jpeg_4k)
    check = expect(("image/jpeg",), len(assets.jpeg_4k))
    outcome = await measure_overhead(
        config,
        provider,
        entry,
        {"resolution": "4K"},
        check,
        config.solo_4k,
        config.jobs_4k,
        "4k-jpeg",
        assets.noisy_png_4k,
    )
    outcome.metrics["provider_output_mib"] = round(len(assets.jpeg_4k) / MIB, 2)
    return outcome


def floor_once(png: bytes) -> int:
    """The least any bot must do with the 4K PNG: decode it, encode JPEG q90 once."""
    with Image.open(io.BytesIO(png)) as image:
        image.load()
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90)
    return len(out.getvalue())


async def floor(config: Config, assets: Assets) -> Outcome:
    """Pillow alone on the same 4K PNG: once at a time, then N at once on the loop's thread pool."""
    reset_peak_rss()
    png = assets.noisy_png_4k
    singles: list[float] = []
    async with LoopMonitor() as monitor:
        for _ in range(config.floor_repeats):
            started = time.perf_counter()
            size = await asyncio.to_thread(floor_once, png)
            singles.append(time.perf_counter() - started)
        mark = monitor.mark()
        began = time.perf_counter()
        latencies = await asyncio.gather(*(_timed_floor(png, began) for _ in range(config.jobs_4k)))
        span = time.perf_counter() - began
        lag = monitor.lag_metrics(mark)
    metrics: Metrics = {
        "jobs": config.jobs_4k,
        "single_ms": ms(statistics.median(singles)),
        "single_min_ms": ms(min(singles)),
        "burst_p50_ms": ms(percentile(latencies, 50)),
        "burst_p99_ms": ms(percentile(latencies, 99)),
        "jobs_per_s": round(config.jobs_4k / span, 2),
        **lag,
        "input_mib": round(len(png) / MIB, 2),
        "output_q90_mib": round(size / MIB, 2),
        "peak_rss_mib": rss_mib(peak=True),
    }
    return Outcome(metrics)


async def _timed_floor(png: bytes, began: float) -> float:
    """Seconds from the start of the batch until this image's decode+encode finished."""
    await asyncio.to_thread(floor_once, png)
    return time.perf_counter() - began


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("ack", "N concurrent /imagine, delayed provider", ack),
    Scenario("overhead-1k", "instant provider, 1K PNG that fits", overhead_1k),
    Scenario("overhead-4k-png", "instant provider, noisy 4K PNG → re-encode", overhead_4k_png),
    Scenario("overhead-4k-jpeg", "instant provider, 4K JPEG that fits → pass-through", overhead_4k_jpeg),
    Scenario(
        "members", "one /imagine from each of N members at once, delayed provider, no provider limit", members
    ),
    Scenario("backlog", "3 members sending N /imagine each as fast as they can, delayed provider", backlog),
    Scenario(
        "references-14", "N concurrent /imagine with 14 references each (3 Pro, delayed provider)", references
    ),
    Scenario(
        "streamed",
        "N concurrent /imagine on 3 Pro with live previews (thought image, then the result)",
        streamed,
    ),
    Scenario("floor", "Pillow alone: decode 4K PNG + encode JPEG q90 (loop's default pool)", floor),
    Scenario("db-quota", "quota reserve + commit (SQLite, PostgreSQL if up)", db_quota, needs_assets=False),
    Scenario(
        "db-conversation",
        "build an 8-turn conversation (SQLite, PostgreSQL if up)",
        db_conversation,
        needs_assets=False,
    ),
)
