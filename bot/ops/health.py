"""The operations endpoint (HEALTH_PORT): liveness, readiness and Prometheus metrics.

GET /livez answers 200 while the process and its event loop do (nothing else is asked: a database
failover the bot rides out must not get it restarted). GET /readyz answers 200 only when the bot can
serve (every shard connected to the gateway, the database answering), else 503 with the reason;
GET /healthz is the same answer under its older name. GET /metrics is the Prometheus exposition.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot import __version__
from bot.errors import ConfigError
from bot.jobs.queue import JobQueue
from bot.ops.metrics import Gateway, Metrics
from bot.storage.db import Database

log = logging.getLogger(__name__)

#: Seconds the database gets to answer `SELECT 1` before /readyz calls it down.
DB_TIMEOUT = 3.0
PATHS = ("/livez", "/readyz", "/healthz", "/metrics")


async def database_status(db: Database | None) -> str:
    """Return "ok", or why the database does not answer (its error type only: never a URL or password)."""
    if db is None:
        return "closed"
    try:
        async with asyncio.timeout(DB_TIMEOUT), db.connect() as conn:
            await conn.execute(select(1))
    except TimeoutError:
        return "timeout"
    except Exception as e:
        return f"error: {type(e).__name__}"
    return "ok"


async def health(gateway: Gateway, db: Database | None, queue: JobQueue) -> tuple[bool, dict[str, Any]]:
    """Whether the bot can serve (gateway connected and database answering), and the details."""
    reading = gateway()
    ready, total = reading.ready, reading.total
    mean = reading.mean_latency()
    database = await database_status(db)
    reasons = []
    if total == 0 or ready < total:
        reasons.append(f"gateway not connected ({ready}/{total} shards ready)")
    if database != "ok":
        reasons.append(f"database {database}")
    body: dict[str, Any] = {
        "status": "unavailable" if reasons else "ok",
        "version": __version__,
        "shards_ready": ready,
        "shards": total,
        "latency_ms": None if mean is None else round(mean * 1000, 1),
        "queue_depth": queue.depth,
        "running": queue.running,
        "database": database,
    }
    if reasons:
        body["reason"] = "; ".join(reasons)
    return not reasons, body


class HealthServer:
    """A small aiohttp server beside the bot; `port` is the bound port once started (for port 0)."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        gateway: Gateway,
        database: Callable[[], Database | None],
        queue: JobQueue,
        metrics: Metrics,
    ) -> None:
        self.host = host
        self.port = port
        self.gateway = gateway
        self.database = database
        self.queue = queue
        self.registry = metrics
        self._runner: web.AppRunner | None = None
        #: The database's last answer to the readiness check (None before the first).
        self._database_state: str | None = None

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/livez", self.livez)
        app.router.add_get("/readyz", self.readyz)
        app.router.add_get("/healthz", self.readyz)
        app.router.add_get("/metrics", self.metrics)
        return app

    async def start(self) -> None:
        """Listen on host:port (the health checks would flood an access log: there is none)."""
        runner = web.AppRunner(self._app(), access_log=None)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as e:
            await runner.cleanup()
            raise ConfigError(
                f"HEALTH_PORT: cannot listen on {self.host}:{self.port} ({e.strerror or e}); "
                "choose a free port or unset HEALTH_PORT"
            ) from e
        self._runner = runner
        self.port = int(runner.addresses[0][1])
        log.info("health and metrics on http://%s:%d (%s)", self.host, self.port, ", ".join(PATHS))

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def livez(self, request: web.Request) -> web.Response:
        """200 whenever this handler runs: the process and its event loop answer."""
        return web.json_response({"status": "ok", "version": __version__})

    async def _ready(self) -> tuple[bool, dict[str, Any]]:
        """The readiness checks; a change of the database's answer is logged once, not every probe."""
        ok, body = await health(self.gateway, self.database(), self.queue)
        if body["database"] != self._database_state:
            if body["database"] != "ok":
                log.warning("health check: the database does not answer (%s)", body["database"])
            elif self._database_state is not None:
                log.warning("health check: the database answers again")
            self._database_state = body["database"]
        return ok, body

    async def readyz(self, request: web.Request) -> web.Response:
        """200 with the details when the bot can serve, else 503 with the reason (also /healthz)."""
        ok, body = await self._ready()
        return web.json_response(body, status=200 if ok else 503)

    async def _check_ready(self) -> None:
        """Record readiness for nanobot_ready (the same checks as /readyz, bounded by DB_TIMEOUT)."""
        ok, _ = await self._ready()
        self.registry.set_ready(ok)

    async def metrics(self, request: web.Request) -> web.Response:
        """Every series in the Prometheus text format, after the database reads (time-bounded)."""
        await asyncio.gather(self.registry.refresh(), self._check_ready())
        body, content_type = self.registry.render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})
