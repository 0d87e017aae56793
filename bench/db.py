"""The database scenarios: quota reserve+commit and 8-turn conversations, through the real stores.

Each runs on a fresh SQLite database and, when a server answers at 127.0.0.1:5432, on a throwaway
PostgreSQL database too (its figures carry a pg_ prefix; n/a when there is no server). Every phase
runs once one at a time and once with Config.db_concurrency in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from bench.base import Config, Outcome
from bench.fakes import Assets
from bench.stats import Metrics, ms, percentile
from bot.billing.rules import Check, Refusal, Rule, effective_user_rule, job_checks
from bot.billing.store import QuotaStore
from bot.config import Settings
from bot.jobs.conversations import Threads
from bot.storage.blobs import BlobStore
from bot.storage.db import Database
from bot.storage.turns import NewTurn, TurnRecord, TurnStore
from tests.pg import pg_probe, temp_pg_database

GUILD, CHANNEL = 1, 10
USERS = 64  # distinct members: concurrent reservations share the guild and operator counters only
COST_CENTS = 350  # a 4K nano-banana-2 image
TURNS = 8
IMAGE_SIDE = 64  # the database is measured, not the disk: small images, one distinct blob per turn
Step = Callable[[int], Awaitable[float]]


@dataclass(frozen=True)
class Backend:
    """A database to measure: its metric prefix ("" for SQLite), URL and scratch directory."""

    prefix: str
    url: str
    scratch: Path


@contextlib.asynccontextmanager
async def backends() -> AsyncIterator[list[Backend | None]]:
    """SQLite in a temp dir, and PostgreSQL when a server answers (None in its place when not)."""
    with tempfile.TemporaryDirectory(prefix="nanobot-bench-db-") as tmp:
        root = Path(tmp)
        found: list[Backend | None] = [
            Backend("", f"sqlite+aiosqlite:///{root / 'bench.db'}", root / "sqlite")
        ]
        async with contextlib.AsyncExitStack() as stack:
            found.append(None)
            if await pg_probe() is None:
                try:
                    found[1] = Backend(
                        "pg_", await stack.enter_async_context(temp_pg_database()), root / "pg"
                    )
                except Exception as e:  # a server that refuses us is not the bot's failure
                    print(f"  PostgreSQL skipped: {type(e).__name__}: {e}", file=sys.stderr)
            yield found


@contextlib.asynccontextmanager
async def opened(backend: Backend) -> AsyncIterator[Database]:
    """The database, migrated to head, closed afterwards."""
    db = await Database.open(backend.url)
    try:
        yield db
    finally:
        await db.close()


async def phase(count: int, width: int, step: Step) -> tuple[list[float], float]:
    """Run step(0..count-1) with `width` workers (worker w takes w, w+width, …); latencies and span."""

    async def worker(first: int) -> list[float]:
        return [await step(n) for n in range(first, count, width)]

    started = time.perf_counter()
    results = await asyncio.gather(*(worker(w) for w in range(min(width, count))))
    return [t for latencies in results for t in latencies], time.perf_counter() - started


def rate(count: int, span: float) -> float | None:
    """count per second, two decimals."""
    return round(count / span, 2) if span > 0 else None


# -- db-quota ----------------------------------------------------------------------------------------


async def quota_checks(quotas: QuotaStore) -> list[list[Check]]:
    """Per member, the four checks Admission charges, with a member default, a pool and a budget."""
    await quotas.set_rule(Rule(GUILD, "default", 0, 10**9, False, "day"))
    await quotas.set_rule(Rule(GUILD, "guild", 0, 10**11, False, "day"))
    rules = await quotas.rules(GUILD)
    return [
        job_checks(
            GUILD,
            user,
            effective_user_rule(rules, user, ()),
            rules,
            budget_cents=10**12,
            max_concurrent=Settings.model_fields["max_concurrent_jobs"].default,
        )
        for user in range(USERS)
    ]


def quota_step(quotas: QuotaStore, checks: list[list[Check]]) -> Step:
    """One job's quota work: reserve (all four counters or none), then commit."""

    async def step(n: int) -> float:
        user = n % USERS
        started = time.perf_counter()
        outcome = await quotas.reserve(
            guild_id=GUILD,
            user_id=user,
            cost_cents=COST_CENTS,
            checks=checks[user],
            kind="imagine",
            prompt="a bench picture",
            provider="relay",
            model="nano-banana-2",
            channel_id=CHANNEL,
        )
        if isinstance(outcome, Refusal):
            raise RuntimeError(f"reservation {n} refused by {outcome.label}")
        await quotas.commit(outcome.id)
        return time.perf_counter() - started

    return step


async def quota_metrics(backend: Backend, config: Config) -> Metrics:
    """Reserve+commit pairs one at a time, then db_concurrency at once, on one database."""
    async with opened(backend) as db:
        quotas = QuotaStore(db)
        step = quota_step(quotas, await quota_checks(quotas))
        alone, alone_span = await phase(config.db_pairs, 1, step)
        together, together_span = await phase(config.db_pairs, config.db_concurrency, step)
    return quota_figures(backend.prefix, config, alone, alone_span, together, together_span)


def quota_figures(
    p: str, config: Config, alone: list[float], alone_span: float, together: list[float], together_span: float
) -> Metrics:
    """The db-quota figures of one database (all None when it did not run)."""
    return {
        f"{p}pairs_per_s": rate(len(alone), alone_span),
        f"{p}pair_p50_ms": ms(percentile(alone, 50)),
        f"{p}pair_p99_ms": ms(percentile(alone, 99)),
        f"{p}concurrent_pairs_per_s": rate(len(together), together_span),
        f"{p}concurrent_pair_p99_ms": ms(percentile(together, 99)),
    }


async def db_quota(config: Config, _assets: Assets) -> Outcome:
    """Quota reserve+commit pairs per second through the real QuotaStore."""
    metrics: Metrics = {"pairs": config.db_pairs, "concurrency": config.db_concurrency}
    async with backends() as found:
        for backend in found:
            if backend is None:
                metrics |= quota_figures("pg_", config, [], 0.0, [], 0.0)
            else:
                metrics |= await quota_metrics(backend, config)
    return Outcome(metrics)


# -- db-conversation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Stores:
    """The stores the service reads and writes a conversation through."""

    turns: TurnStore
    blobs: BlobStore
    threads: Threads


def tiny_pngs(count: int) -> list[bytes]:
    """count distinct small PNGs (one blob per turn, as every real output differs)."""
    out = []
    for n in range(count):
        buffer = io.BytesIO()
        Image.new("RGB", (IMAGE_SIDE, IMAGE_SIDE), (n % 256, n // 256 % 256, 7)).save(buffer, "PNG")
        out.append(buffer.getvalue())
    return out


async def add_turn(stores: Stores, parent: TurnRecord | None, image: bytes, message_id: int) -> int:
    """One turn as the service makes it; how many store calls that took.

    A reply finds its parent by message, prices the replayed history (lineage), replays it
    (history), then stores the output blob, writes the turn and links the posted message.
    """
    calls = 0
    if parent is not None:
        found = await stores.turns.by_message(parent.message_ids[0])
        assert found is not None
        await stores.turns.lineage(found.id, stores.threads.depth)
        await stores.threads.history(found)
        calls += 3
    ref = await stores.blobs.put(image, "image/png", IMAGE_SIDE, IMAGE_SIDE)
    turn = await stores.turns.create(
        NewTurn(
            guild_id=GUILD,
            channel_id=CHANNEL,
            user_id=message_id // TURNS % USERS,
            parent_id=None if parent is None else parent.id,
            kind="imagine" if parent is None else "refine",
            prompt=f"turn {message_id % TURNS}: make it bluer",
            provider="google",
            model="gemini-2.5-flash-image",
            output_images=(ref,),
            model_text="Here it is, bluer.",
            provider_state={"thought_signature": "c2lnbmF0dXJl" * 8},
        )
    )
    await stores.turns.attach_messages(turn.id, CHANNEL, [message_id])
    return calls + 3


def conversation_step(
    stores: Stores, images: list[bytes], offset: int, calls: list[int], loads: list[float]
) -> Step:
    """Conversation offset+n: eight turns, then the 8th turn's history, timed (a ninth reply's replay)."""

    async def step(index: int) -> float:
        n = offset + index
        started = time.perf_counter()
        parent: TurnRecord | None = None
        for k in range(TURNS):
            message_id = n * TURNS + k + 1
            calls.append(await add_turn(stores, parent, images[(n * TURNS + k) % len(images)], message_id))
            parent = await stores.turns.by_message(message_id)
        assert parent is not None
        loaded = time.perf_counter()
        history = await stores.threads.history(parent)
        loads.append(time.perf_counter() - loaded)
        calls.append(TURNS + 1)  # the by_message lookups above, and this history
        if len(history.turns) != 2 * TURNS:
            raise RuntimeError(f"conversation {n}: history has {len(history.turns)} turns, not {2 * TURNS}")
        return time.perf_counter() - started

    return step


async def conversation_metrics(backend: Backend, config: Config) -> Metrics:
    """Conversations one at a time, then db_concurrency at once, on one database."""
    p, count = backend.prefix, config.conversations
    images = tiny_pngs(2 * count * TURNS)
    figures: Metrics = {}
    async with opened(backend) as db:
        turns = TurnStore(db)
        blobs = BlobStore(backend.scratch / "blobs", db)
        stores = Stores(turns, blobs, Threads(turns, blobs, depth=TURNS))
        for label, width, offset in (("", 1, 0), ("concurrent_", config.db_concurrency, count)):
            calls: list[int] = []
            loads: list[float] = []
            _, span = await phase(count, width, conversation_step(stores, images, offset, calls, loads))
            figures[f"{p}{label}conversations_per_s"] = rate(count, span)
            figures[f"{p}{label}ops_per_s"] = rate(sum(calls), span)
            figures[f"{p}{label}history_p50_ms"] = ms(percentile(loads, 50))
    return figures


async def db_conversation(config: Config, _assets: Assets) -> Outcome:
    """8-turn conversations (stored, then replayed) per second through TurnStore and Threads."""
    metrics: Metrics = {"conversations": config.conversations, "concurrency": config.db_concurrency}
    async with backends() as found:
        for backend in found:
            if backend is None:
                empty = ("conversations_per_s", "ops_per_s", "history_p50_ms")
                metrics |= {f"pg_{c}{k}": None for c in ("", "concurrent_") for k in empty}
            else:
                metrics |= await conversation_metrics(backend, config)
    return Outcome(metrics)
