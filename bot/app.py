"""The Discord bot: one commands.Bot subclass whose setup_hook wires the session, providers and cogs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import hashlib
import json
import logging
import signal
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

import discord
import yarl
from discord.ext import commands

from bot.billing.server_rules import normalize
from bot.billing.store import QuotaStore
from bot.config import Settings
from bot.errors import ConfigError
from bot.i18n import catalogue
from bot.jobs.service import JobService
from bot.ops.health import HealthServer
from bot.ops.metrics import GatewayReading, Metrics
from bot.providers.router import Router
from bot.storage.db import Database, upgrade
from bot.storage.guilds import GuildSettingsStore
from bot.storage.retention import PromptRetention
from bot.ui.attachments import output_url, refetch_output
from bot.ui.contexts import declare_contexts
from bot.ui.interrupted import tell_interrupted
from bot.ui.translator import CatalogueTranslator
from bot.ui.tree import NanoTree
from bot.wiring import Services, build_services, open_session

log = logging.getLogger(__name__)

EXTENSIONS = (
    "cogs.generate",
    "cogs.edit",
    "cogs.upscale",
    "cogs.refine",
    "cogs.menus",
    "cogs.buttons",
    "cogs.admin",
    "cogs.settings",
    "cogs.style",
    "cogs.forget",
    "cogs.prefs",
    "cogs.show",
    "cogs.help",
)
EXIT_OK, EXIT_CONFIG = 0, 2
#: How a notice names where an interrupted job was.
#: Blob retention is applied every this many heartbeats.
PRUNE_EVERY = 120


def apply_endpoints(settings: Settings) -> None:
    """Point discord.py's REST base and gateway at the configured URLs (proxies, or a test fake)."""
    if settings.discord_api_base:
        discord.http.Route.BASE = settings.discord_api_base.rstrip("/")
    if settings.discord_gateway_url:
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(settings.discord_gateway_url)


def make_intents(settings: Settings) -> discord.Intents:
    """Default intents, plus MESSAGE_CONTENT when enabled (needed to read replies without a mention)."""
    intents = discord.Intents.default()
    intents.message_content = settings.message_content_intent
    return intents


class NanoBot(commands.AutoShardedBot):
    """The bot. Sharding-ready: SHARD_COUNT / SHARD_IDS run a cluster of shards in this process."""

    def __init__(self, settings: Settings, *, force_sync: bool = False, **options: Any) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=make_intents(settings),
            help_command=None,
            shard_count=settings.shard_count,
            shard_ids=settings.shard_ids,  # type: ignore[arg-type]  # None = all shards
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=NanoTree,
            **options,
        )
        self.settings = settings
        self.force_sync = force_sync
        self.metrics = Metrics()
        self.metrics.watch_gateway(self.gateway_status)
        #: Every service, built once in setup_hook by bot.wiring (cogs reach them through services_of).
        self.services: Services
        self._maintenance: list[asyncio.Task[None]] = []
        self.health: HealthServer | None = None
        #: Tasks started outside any cog (a signal's shutdown), kept referenced until done.
        self.background_tasks: set[asyncio.Task[None]] = set()
        self._gc_frozen = False
        self._closing: asyncio.Future[None] | None = None
        #: Whether maintenance may still run (cleared first thing when the bot closes).
        self._maintaining = False
        self._db_open = False

    @property
    def router(self) -> Router:
        """The provider router."""
        return self.services.router

    @property
    def service(self) -> JobService:
        """The job service."""
        return self.services.jobs

    @property
    def quotas(self) -> QuotaStore:
        """The quota store."""
        return self.services.quotas

    @property
    def guild_settings(self) -> GuildSettingsStore:
        """The servers' settings."""
        return self.services.guild_settings

    @property
    def db(self) -> Database | None:
        """The database while it is open (None once the bot has closed it)."""
        return self.services.db if self._db_open else None

    async def setup_hook(self) -> None:
        """Build the services, load every cog, sync commands if they changed, start maintenance."""
        # The blocklist's confusables tables take ~0.1 s to build: never on the event loop mid-burst.
        warming = asyncio.ensure_future(asyncio.to_thread(normalize, "é"))
        await asyncio.to_thread(catalogue)  # every language's messages, read once, off the event loop
        await self.tree.set_translator(CatalogueTranslator())
        session = open_session(self.settings)
        try:
            self.services = await build_services(
                self.settings,
                session,
                refetch=partial(refetch_output, self),
                locate=partial(output_url, self),
                metrics=self.metrics,
            )
        except BaseException:
            await session.close()
            raise
        self._db_open = self._maintaining = True
        self._maintenance = [
            asyncio.create_task(self._beat(), name="nanobot-heartbeat"),
            asyncio.create_task(self._maintain(), name="nanobot-maintenance"),
        ]
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        declare_contexts(self.tree, self.settings)
        await warming
        await self.sync_commands(force=self.force_sync)
        if not self.router.providers:
            log.warning("no image provider configured: only /upscale (local) will work")
        if self.settings.health_port is not None:
            self.health = HealthServer(
                self.settings.health_host,
                self.settings.health_port,
                gateway=self.gateway_status,
                database=lambda: self.db,
                queue=self.service.supervisor.queue,
                metrics=self.metrics,
            )
            await self.health.start()

    def gateway_status(self) -> GatewayReading:
        """Shards with an open gateway connection, shards in this process, each shard's latency."""
        shards = self.shards
        ready = sum(1 for shard in shards.values() if not shard.is_closed()) if self.is_ready() else 0
        if self.is_closed():
            ready = 0
        return GatewayReading(ready, len(shards), tuple(self.latencies))

    async def _beat(self) -> None:
        """Every interval, on its own: this process is alive (slow maintenance never delays it)."""
        while self._maintaining:
            try:
                await self.services.recovery.heartbeat()
            except Exception as e:  # the database is down: the maintenance round says so too
                log.warning("heartbeat failed (%s)", type(e).__name__)
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def _maintain(self) -> None:
        """Every interval: settle jobs of dead processes (telling their users), sweep, prune old blobs."""
        rounds = 0
        recovery = self.services.recovery
        while self._maintaining:
            try:
                await tell_interrupted(self, await recovery.recover())
                # Own reservations no job holds, once old enough that their job had time to settle.
                age = timedelta(seconds=self.settings.heartbeat_interval)
                await recovery.sweep(self.service.held(), older_than=age)
                self.router.share(await recovery.live_processes())  # each takes its share of the rates
                if rounds % PRUNE_EVERY == 0:
                    await self.services.blobs.prune()
                    await PromptRetention(
                        self.services.db, self.services.blobs, self.settings.prompt_retention_days
                    ).prune()
            except Exception:
                log.exception("maintenance round failed")
            rounds += 1
            await asyncio.sleep(self.settings.heartbeat_interval)

    async def close(self) -> None:
        """Stop maintenance, let running jobs finish (refund and tell those that cannot), close.

        Idempotent: a signal's close and `async with`'s close share one run of the steps.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._close_once())
        await asyncio.shield(self._closing)

    async def _close_once(self) -> None:
        """The steps of close(), run once."""
        self._maintaining = False
        for task in self._maintenance:
            task.cancel()
        # Unwind their database work before the engine closes (a cancelled query must finish first).
        await asyncio.gather(*self._maintenance, return_exceptions=True)
        self._maintenance = []
        if self.health is not None:
            await self.health.stop()
            self.health = None
        built = hasattr(self, "services")
        if built:
            self.service.supervisor.queue.stop()  # running jobs finish; waiting ones never start
        idle = not built or await self.service.wait_idle(self.settings.shutdown_grace)
        if built:
            await self._retire()
        if not idle:
            log.warning("closing with jobs still running: refunded and cancelled")
            await self.service.abandon()
        await super().close()
        if built:
            if not self.services.session.closed:
                await self.services.session.close()
            self._db_open = False
            await self.services.db.close()
        if self._gc_frozen:  # what start-up built may be garbage now: let the collector see it
            self._gc_frozen = False
            gc.unfreeze()

    async def _retire(self) -> None:
        """Refund (and tell) the jobs still held, then leave the instances table: nothing waits."""
        recovery = self.services.recovery
        try:
            await tell_interrupted(self, await recovery.release(), "shutdown")
            await recovery.retire()
        except Exception:  # the database may be the reason we stop; the next start recovers
            log.exception("could not settle this process's jobs at shutdown")

    async def on_ready(self) -> None:
        """Every shard is connected: take what start-up built out of the garbage collector's scans.

        Modules, settings, caches of guilds and members live as long as the process; leaving them
        to the collector makes each full collection walk all of them (a ~100 ms pause of the event
        loop during a burst of commands, measured by the benchmark). Done once, after a collection.
        """
        if not self._gc_frozen:
            self._gc_frozen = True
            gc.collect()
            gc.freeze()
            log.info("ready: %d guilds; %d start-up objects frozen", len(self.guilds), gc.get_freeze_count())

    async def command_hash(self) -> str:
        """A hash of every command definition (with its translations) and where it is synced."""
        translator = self.tree.translator
        if translator is None:
            payload = [c.to_dict(self.tree) for c in self.tree.get_commands()]
        else:
            payload = [
                await c.get_translated_payload(self.tree, translator) for c in self.tree.get_commands()
            ]
        blob = json.dumps([payload, self.settings.sync_guild_ids], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()

    def _hash_file(self) -> Path:
        """Where the hash of the last synced definitions is kept."""
        return self.settings.data_dir / f"commands-{self.application_id}.sha256"

    async def sync_commands(self, *, force: bool = False) -> bool:
        """Sync only when the definitions changed since the last sync (or when forced)."""
        digest = await self.command_hash()
        path = self._hash_file()
        previous = await asyncio.to_thread(_read_text, path)
        if not force and previous == digest:
            log.info("slash commands unchanged; not syncing")
            return False
        if self.settings.sync_guild_ids:
            for guild_id in self.settings.sync_guild_ids:
                guild = discord.Object(guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()
        await asyncio.to_thread(_write_text, path, digest)
        log.info("slash commands synced")
        return True


def _read_text(path: Path) -> str | None:
    """A small file's text, or None."""
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _write_text(path: Path, text: str) -> None:
    """Write a small file, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def stop_on_signals(bot: NanoBot) -> None:
    """SIGTERM (docker stop, systemd) and SIGINT close the bot cleanly instead of killing it."""
    loop = asyncio.get_running_loop()

    def stop(name: str) -> None:
        log.info("%s received: shutting down", name)
        task = loop.create_task(bot.close())
        bot.background_tasks.add(task)
        task.add_done_callback(bot.background_tasks.discard)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):  # not on Windows' default loop
            loop.add_signal_handler(sig, stop, sig.name)


async def start_bot(bot: NanoBot, token: str, *, handle_signals: bool = False) -> int:
    """Run the bot until it stops; bad tokens and missing intents end with one clear line."""
    if handle_signals:
        stop_on_signals(bot)
    try:
        async with bot:
            await bot.start(token)
        await bot.close()  # a signal's close may still be settling jobs: let it finish
    except discord.LoginFailure:
        log.error(
            "DISCORD_TOKEN was refused by Discord: copy the bot token again from the "
            "Developer Portal (Bot → Reset Token)"
        )
        return EXIT_CONFIG
    except discord.PrivilegedIntentsRequired:
        log.error(
            "Discord refused the MESSAGE_CONTENT intent: enable 'Message Content Intent' in the "
            "Developer Portal (Bot → Privileged Gateway Intents), or set MESSAGE_CONTENT_INTENT=false"
        )
        return EXIT_CONFIG
    return EXIT_OK


async def sync_only(bot: NanoBot, token: str) -> int:
    """Log in, push the command definitions, log out."""
    bot.force_sync = True
    try:
        async with bot:
            await bot.login(token)
    except discord.LoginFailure:
        log.error("DISCORD_TOKEN was refused by Discord")
        return EXIT_CONFIG
    return EXIT_OK


def run_command(command: str, settings: Settings, args: argparse.Namespace) -> int:
    """`run`, `sync` and `db upgrade`."""
    if command == "db":
        asyncio.run(upgrade(settings.effective_database_url))
        print("database upgraded")
        return EXIT_OK
    if settings.discord_token is None or not settings.discord_token.get_secret_value():
        raise ConfigError(
            "DISCORD_TOKEN is not set: put the bot token in the environment or .env, "
            "or in a file named by DISCORD_TOKEN_FILE (or discord_token in SECRETS_DIR, default /run/secrets)"
        )
    apply_endpoints(settings)
    bot = NanoBot(settings)
    token = settings.discord_token.get_secret_value()
    if command == "sync":
        return asyncio.run(sync_only(bot, token))
    return asyncio.run(start_bot(bot, token, handle_signals=True))
