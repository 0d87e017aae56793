"""Gemini-native scenarios: jobs with 14 references, and streamed jobs with live previews.

Both run on Gemini 3 Pro Image with production settings (live previews on) against a fake Gemini in
its own process (bench.remote), so that what the event loop's lag measures is the bot's own work:
building 15–20 MB request bodies, reading server-sent events, decoding thought images, editing the
progress messages.
"""

from __future__ import annotations

import asyncio
from typing import Any

from bench.base import Config, Outcome
from bench.fakes import photo_like
from bench.harness import KEY, Job, Session, burst, session
from bench.remote import RemoteGemini
from bench.stats import Metrics, ms, percentile, reset_peak_rss, rss_mib
from tests.fakes.discord.payloads import JSON

PRO = "gemini-3-pro-image-preview"
#: Each reference: a photo-like 1400² JPEG (~0.95 MB); 14 of them make a ~17 MB body, just under
#: the 20 MB inline limit (the biggest body the bot builds and sends whole).
REFERENCE_SIDE = 1400
REFERENCES = 14


def entry() -> dict[str, Any]:
    """The provider entry (its base URL is filled in by the session)."""
    return {"name": "google", "kind": "gemini", "api_key": KEY, "models": [PRO]}


def field(message: JSON | None, name: str) -> str | None:
    """A field of a result's embed."""
    embeds = (message or {}).get("embeds") or [{}]
    return next((f["value"] for f in embeds[0].get("fields", []) if f["name"] == name), None)


def check(s: Session, jobs: list[Job], what: str, references: int | None = None) -> int:
    """Note every job that did not come back as an image (with its references counted); how many."""
    before = len(s.failures)
    for job in jobs:
        problem = job.error
        if problem is None and not (job.message or {}).get("attachments"):
            problem = f"no image: {field(job.message, 'Model') or (job.message or {}).get('embeds')}"
        if (
            problem is None
            and references is not None
            and field(job.message, "References") != f"{references} images"
        ):
            problem = f"References field is {field(job.message, 'References')!r}"
        if problem is not None:
            s.failures.append(f"{what} job {job.tag}: {problem}")
    return len(s.failures) - before


def timing(jobs: list[Job]) -> Metrics:
    """End-to-end p50/p99 of the jobs that finished, and how many finished per second."""
    e2e = [e for j in jobs if (e := j.e2e) is not None]
    done = [j.done_at for j in jobs if j.done_at is not None]
    span = max(done) - min(j.handle.created_at for j in jobs) if done else 0.0
    return {
        "e2e_p50_ms": ms(percentile(e2e, 50)),
        "e2e_p99_ms": ms(percentile(e2e, 99)),
        "jobs_per_s": round(len(done) / span, 2) if span > 0 else None,
    }


def link(s: Session, message: JSON) -> str:
    """The Discord link to a message."""
    return f"https://discord.com/channels/{s.fake.guild_id}/{message['channel_id']}/{message['id']}"


async def references(config: Config, _assets: Any) -> Outcome:
    """N concurrent /imagine, each with 14 references (3 attachments, 11 images of two linked
    messages): every request body is built, base64 and all, and sent whole."""
    reset_peak_rss()
    images = await asyncio.to_thread(
        lambda: [photo_like(REFERENCE_SIDE, "JPEG", seed=100 + n) for n in range(REFERENCES)]
    )
    provider = RemoteGemini(KEY, delay=config.delay)
    jobs_count = config.native_jobs
    async with session(provider, entry(), config, members=jobs_count) as s:  # type: ignore[arg-type]
        first = await s.fake.user_message(
            "refs", attachments=[(f"r{n}.jpg", images[n]) for n in range(3, 13)]
        )
        second = await s.fake.user_message("refs", attachments=[("r13.jpg", images[13])])
        options = {
            "model": PRO,
            **{key: (f"r{n}.jpg", images[n]) for n, key in enumerate(("image", "image2", "image3"))},
            "references": f"{link(s, first)} {link(s, second)}",
        }
        mark = s.monitor.mark()
        jobs = await burst(s, "refs", jobs_count, options)
        lag = s.monitor.lag_metrics(mark)
    failed = check(s, jobs, "references", REFERENCES)
    metrics: Metrics = {
        "jobs": jobs_count,
        "failed": failed,
        "references_mib": round(sum(map(len, images)) / 2**20, 1),
        **lag,
        **timing(jobs),
        "peak_rss_mib": rss_mib(peak=True),
    }
    return Outcome(metrics, s.failures)


async def streamed(config: Config, _assets: Any) -> Outcome:
    """N concurrent /imagine with live previews: the model thinks for `delay` seconds, then sends its
    thought text and image at once and the final image `delay` seconds later."""
    reset_peak_rss()
    provider = RemoteGemini(KEY, delay=config.delay / 2, gap=config.delay / 2)
    jobs_count = config.native_jobs
    async with session(provider, entry(), config, members=jobs_count) as s:  # type: ignore[arg-type]
        mark = s.monitor.mark()
        jobs = await burst(s, "stream", jobs_count, {"model": PRO})
        lag = s.monitor.lag_metrics(mark)
        previewed = sum(1 for job in jobs if job.handle.original_id in s.fake.previewed)
    failed = check(s, jobs, "streamed")
    metrics: Metrics = {
        "jobs": jobs_count,
        "failed": failed,
        "previews_shown": previewed,
        **lag,
        **timing(jobs),
        "peak_rss_mib": rss_mib(peak=True),
    }
    return Outcome(metrics, s.failures)
