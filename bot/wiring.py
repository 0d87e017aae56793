"""The composition root: every service of the bot built once, each with what it needs.

The bot (bot/app.py) and the command line (bot/cli.py) both build what they use here; nothing else
constructs a service. Discord stays outside: the one thing the core needs from it (re-fetching an
image from its message) comes in as a function.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial

import aiohttp

from bot.billing.admission import Admission
from bot.billing.store import QuotaStore
from bot.config import Settings
from bot.jobs.conversations import Locate, Refetch, Threads
from bot.jobs.queue import JobQueue
from bot.jobs.recovery import Recovery, new_owner
from bot.jobs.service import JobService
from bot.jobs.supervisor import Supervisor
from bot.ops.metrics import Metrics, operator_spent
from bot.providers.http import HttpClient
from bot.providers.netguard import guarded_connector
from bot.providers.registry import build_router
from bot.providers.router import Router
from bot.providers.telemetry import NO_TELEMETRY, Telemetry
from bot.storage.blobs import BlobStore
from bot.storage.db import Database
from bot.storage.guilds import GuildSettingsStore
from bot.storage.prefs import PrefsStore
from bot.storage.styles import StyleStore
from bot.storage.turns import TurnStore

#: A process silent for this many heartbeat intervals is dead: its jobs are settled by the others.
STALE_BEATS = 3


@dataclass(frozen=True, slots=True)
class Services:
    """Everything the bot runs on, built once by build_services (frozen: nothing is swapped later)."""

    settings: Settings
    session: aiohttp.ClientSession
    db: Database
    router: Router
    turns: TurnStore
    blobs: BlobStore
    threads: Threads
    quotas: QuotaStore
    guild_settings: GuildSettingsStore
    recovery: Recovery
    jobs: JobService
    metrics: Metrics
    styles: StyleStore
    prefs: PrefsStore


def open_session(settings: Settings) -> aiohttp.ClientSession:
    """The process's one HTTP session: providers' own hosts (and IMAGE_URL_HOSTS) trusted, every other
    address public only."""
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=settings.connect_timeout)
    return aiohttp.ClientSession(
        timeout=timeout, connector=guarded_connector(settings.provider_hosts | set(settings.image_url_hosts))
    )


def build_providers(settings: Settings, session: aiohttp.ClientSession, telemetry: Telemetry) -> Router:
    """The configured providers behind their router, reporting requests, retries and key rests."""
    return build_router(settings, session, telemetry)


@dataclass(frozen=True, slots=True)
class Providers:
    """What the command line runs on: the session, the providers, and an HTTP client for inputs."""

    settings: Settings
    session: aiohttp.ClientSession
    router: Router
    http: HttpClient


@contextlib.asynccontextmanager
async def provider_services(settings: Settings) -> AsyncIterator[Providers]:
    """The command line's services (no metrics), built like the bot's; the session is closed afterwards."""
    async with open_session(settings) as session:
        router = build_providers(settings, session, NO_TELEMETRY)
        yield Providers(settings, session, router, HttpClient(session))


def build_supervisor(settings: Settings) -> Supervisor:
    """The queue (global, per-provider and per-member limits) and its supervisor."""
    queue = JobQueue(
        global_limit=settings.max_running_jobs,
        provider_limits={p.name: p.concurrency for p in settings.providers if p.concurrency},
        per_user_queued=settings.max_queued_per_user,
    )
    return Supervisor(queue, interval=settings.progress_interval)


async def build_services(
    settings: Settings,
    session: aiohttp.ClientSession,
    *,
    refetch: Refetch,
    locate: Locate,
    metrics: Metrics,
) -> Services:
    """Open the database (migrating it) and build every service on it; this process starts beating.

    The metrics are told where to read the providers' breakers and the operator's budget.
    """
    db = await Database.open(settings.effective_database_url, outage_seconds=settings.database_outage_seconds)
    turns = TurnStore(db)
    blobs = BlobStore(settings.data_dir / "blobs", db, retention_days=settings.blob_retention_days)
    threads = Threads(turns, blobs, depth=settings.history_depth, refetch=refetch, locate=locate)
    router = build_providers(settings, session, metrics.providers)
    metrics.watch_router(router.status)
    quotas = QuotaStore(db)
    if settings.operator_daily_budget is not None:  # else nothing to compare with: no query per scrape
        metrics.watch_operator(settings.operator_daily_budget, partial(operator_spent, quotas))
    guild_settings = GuildSettingsStore(db)
    owner = new_owner(settings.shard_ids, settings.instance_id)
    recovery = Recovery(db, quotas, owner, stale_after=STALE_BEATS * settings.heartbeat_interval)
    await recovery.heartbeat()
    admission = Admission(settings, quotas, guild_settings, owner=owner)
    jobs = JobService(
        settings,
        router,
        turns=turns,
        blobs=blobs,
        threads=threads,
        admission=admission,
        supervisor=build_supervisor(settings),
        metrics=metrics,
    )
    return Services(
        settings,
        session,
        db,
        router,
        turns,
        blobs,
        threads,
        quotas,
        guild_settings,
        recovery,
        jobs,
        metrics,
        styles=StyleStore(db),
        prefs=PrefsStore(db),
    )


def services_of(client: object) -> Services:
    """The services a running bot carries (for cogs and the Discord side, which never import the bot)."""
    services = getattr(client, "services", None)
    if not isinstance(services, Services):
        raise RuntimeError("the bot's services are not built yet (setup_hook has not run)")
    return services
