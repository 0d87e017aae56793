"""Load scenarios: many members with one job each, and a few members with a long backlog each.

Both run the real bot at production settings against a provider that answers after `delay`
seconds with no concurrency limit of its own, so whatever holds jobs back is the bot's queue.
Every command gets a visible answer: an image (delivered), a refusal (counted by its embed title:
a limit said no, nothing was charged) or an error (failed: the job was accepted and then lost).
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass

from bench.base import Config, Outcome
from bench.fakes import Assets, prompt_for
from bench.harness import Job, Session, finish, gemini, session
from bench.stats import Metrics, ms, percentile, reset_peak_rss, rss_mib
from bot.config import Settings
from bot.errors import NanoBotError, Refused
from tests.fakes.discord.interactions import InteractionHandle

#: The setting a backlog needs raised so that every job can wait its turn instead of being refused.
QUEUE_SETTING = "max_queued_per_user"


@dataclass
class Tally:
    """What became of a set of jobs: delivered, refused (by title) or failed."""

    delivered: list[Job]
    refused: Counter[str]
    failed: list[Job]


def failure_titles() -> frozenset[str]:
    """The titles of every error kind that means a job failed (a refusal names itself instead)."""
    found: set[str] = set()
    todo: list[type[NanoBotError]] = [NanoBotError]
    while todo:
        kind = todo.pop()
        todo += kind.__subclasses__()
        title = kind.__dict__.get("title")
        if kind is not Refused and isinstance(title, str):
            found.add(title)
    return frozenset(found)


def tally(s: Session, jobs: list[Job], what: str) -> Tally:
    """Sort jobs by their final answer; a failed job is also noted in the session's failures."""
    failures = failure_titles()
    result = Tally([], Counter(), [])
    for job in jobs:
        problem = job.error
        if problem is None and job.message is not None:
            attachments = job.message.get("attachments") or []
            embed = (job.message.get("embeds") or [{}])[0]
            title = str(embed.get("title") or "")
            if any(str(a.get("content_type", "")).startswith("image/") for a in attachments):
                result.delivered.append(job)
                continue
            if title and title not in failures and not attachments:
                result.refused[title] += 1
                continue
            problem = f"reply has no image: {title!r} {embed.get('description')!r}"
        result.failed.append(job)
        s.failures.append(f"{what} job {job.tag}: {problem}")
    return result


def slug(title: str) -> str:
    """A refusal title as a metric name ("⏳ Queue full" → "queue_full")."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "untitled"


def outcome_metrics(s: Session, jobs: list[Job], t: Tally) -> Metrics:
    """Counts, refusal kinds, end-to-end (delivered jobs), provider and acknowledgement times, rate."""
    e2e = [e for j in t.delivered if (e := j.e2e) is not None]
    provider = [s.provider.timings.get(j.tag, 0.0) for j in t.delivered]
    acks = [a for j in jobs if (a := j.handle.ack_latency) is not None]
    kinds: Metrics = {f"refused_{slug(title)}": count for title, count in sorted(t.refused.items())}
    return {
        "delivered": len(t.delivered),
        "refused": sum(t.refused.values()),
        **kinds,
        "failed": len(t.failed),
        "e2e_p50_ms": ms(percentile(e2e, 50)),
        "e2e_p99_ms": ms(percentile(e2e, 99)),
        "provider_p50_ms": ms(percentile(provider, 50)),
        "ack_p50_ms": ms(percentile(acks, 50)),
        "ack_p99_ms": ms(percentile(acks, 99)),
        "jobs_per_s": delivered_per_second(jobs, t.delivered),
    }


def delivered_per_second(jobs: list[Job], delivered: list[Job]) -> float | None:
    """Delivered jobs over the span from the first dispatch to the last delivered result."""
    done = [j.done_at for j in delivered if j.done_at is not None]
    if not done or not jobs:
        return None
    span = max(done) - min(j.handle.created_at for j in jobs)
    return round(len(done) / span, 2) if span > 0 else None


def rate_metrics(actual: float | None, ideal: float) -> Metrics:
    """The ideal rate and how close the measured one came to it."""
    ratio = None if actual is None or ideal <= 0 else round(actual / ideal, 3)
    return {"ideal_jobs_per_s": round(ideal, 2), "ideal_ratio": ratio}


def inversions(done: list[float]) -> int:
    """Pairs of results (given in the order their commands were sent) that arrived the other way round."""
    return sum(1 for i, first in enumerate(done) for later in done[i + 1 :] if later < first)


def queue_limit(wanted: int) -> int:
    """MAX_QUEUED_PER_USER as high as wanted, within the bounds the settings accept."""
    bounds = Settings.model_fields[QUEUE_SETTING].metadata
    highest = min((le for b in bounds if isinstance(le := getattr(b, "le", None), int)), default=wanted)
    return min(wanted, highest)


def jobs_at_once(s: Session) -> int:
    """How many of a member's jobs may run at once where no server sets jobs_at_once."""
    return s.bot.settings.max_concurrent_jobs


async def members(config: Config, assets: Assets) -> Outcome:
    """`commands` members with one /imagine each, all sent at once."""
    reset_peak_rss()
    start = rss_mib()
    provider, entry = gemini(assets)
    provider.delay = config.delay
    async with session(provider, entry, config, members=config.commands) as s:
        mark = s.monitor.mark()
        tags = [f"m{n}" for n in range(config.commands)]
        handles = await asyncio.gather(
            *(
                s.fake.send_slash("imagine", {"prompt": prompt_for(tag)}, user=user)
                for tag, user in zip(tags, s.users, strict=True)
            )
        )
        jobs = list(await asyncio.gather(*(finish(s, t, h) for t, h in zip(tags, handles, strict=True))))
        lag = s.monitor.lag_metrics(mark)
    t = tally(s, jobs, "members")
    metrics: Metrics = {
        "members": config.commands,
        **outcome_metrics(s, jobs, t),
        "undelivered": config.commands - len(t.delivered),
        # The provider takes every job at once: all of them could be done one delay after the burst.
        **rate_metrics(delivered_per_second(jobs, t.delivered), config.commands / config.delay),
        **lag,
        "rss_start_mib": start,
        "peak_rss_mib": rss_mib(peak=True),
    }
    return Outcome(metrics, s.failures)


async def send_in_order(s: Session, member: int, count: int) -> list[tuple[str, InteractionHandle]]:
    """One member's commands, each dispatched as soon as the previous one was sent."""
    sent = []
    for n in range(count):
        tag = f"b{member}x{n}"
        handle = await s.fake.send_slash("imagine", {"prompt": prompt_for(tag)}, user=s.users[member])
        sent.append((tag, handle))
    return sent


async def backlog(config: Config, assets: Assets) -> Outcome:
    """`backlog_members` members sending `commands` /imagine each, as fast as they can."""
    reset_peak_rss()
    start = rss_mib()
    provider, entry = gemini(assets)
    provider.delay = config.delay
    limit = queue_limit(config.backlog_queue)
    count = config.backlog_members
    async with session(provider, entry, config, members=count, **{QUEUE_SETTING: limit}) as s:
        at_once = jobs_at_once(s)
        mark = s.monitor.mark()
        sent = await asyncio.gather(*(send_in_order(s, m, config.commands) for m in range(count)))
        jobs = list(
            await asyncio.gather(*(finish(s, tag, handle) for member in sent for tag, handle in member))
        )
        lag = s.monitor.lag_metrics(mark)
    per_member = [jobs[m * config.commands : (m + 1) * config.commands] for m in range(count)]
    t = tally(s, jobs, "backlog")
    delivered = {id(j) for j in t.delivered}
    orders = [
        inversions([j.done_at for j in member if id(j) in delivered and j.done_at is not None])
        for member in per_member
    ]
    metrics: Metrics = {
        "members": count,
        "jobs_per_member": config.commands,
        "queue_limit": limit,
        "jobs_at_once": at_once,
        "accepted": len(jobs) - sum(t.refused.values()),
        **outcome_metrics(s, jobs, t),
        "order_inversions": sum(orders),
        "members_out_of_order": sum(1 for n in orders if n),
        # Each member may run jobs_at_once jobs at a time, each taking one provider delay.
        **rate_metrics(delivered_per_second(jobs, t.delivered), at_once * count / config.delay),
        **lag,
        "rss_start_mib": start,
        "peak_rss_mib": rss_mib(peak=True),
    }
    return Outcome(metrics, s.failures)
