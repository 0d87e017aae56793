"""The operations endpoint (HEALTH_PORT): GET /healthz for orchestrators, GET /metrics for Prometheus."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from sqlalchemy import select

from bot.errors import ConfigError
from bot.jobs.queue import JobQueue
from bot.ops.metrics import CONTENT_TYPE, Metrics
from bot.storage.db import Database

log = logging.getLogger(__name__)

#: Seconds the database gets to answer `SELECT 1` before /healthz calls it down.
DB_TIMEOUT = 3.0
#: (shards with an open gateway connection, shards in this process, mean latency in ms or None).
GatewayStatus = Callable[[], tuple[int, int, float | None]]


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
        log.warning("health check: the database did not answer (%s)", type(e).__name__)
        return f"error: {type(e).__name__}"
    return "ok"


async def health(gateway: GatewayStatus, db: Database | None, queue: JobQueue) -> tuple[bool, dict[str, Any]]:
    """Whether the bot can serve (gateway connected and database answering), and the details."""
    ready, total, latency_ms = gateway()
    database = await database_status(db)
    reasons = []
    if total == 0 or ready < total:
        reasons.append(f"gateway not connected ({ready}/{total} shards ready)")
    if database != "ok":
        reasons.append(f"database {database}")
    body: dict[str, Any] = {
        "status": "unavailable" if reasons else "ok",
        "shards_ready": ready,
        "shards": total,
        "latency_ms": latency_ms,
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
        gateway: GatewayStatus,
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

    def _app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self.healthz)
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
        log.info("health and metrics on http://%s:%d (/healthz, /metrics)", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening (idempotent)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def healthz(self, request: web.Request) -> web.Response:
        """200 with the details when the bot can serve, else 503 with the reason."""
        ok, body = await health(self.gateway, self.database(), self.queue)
        return web.json_response(body, status=200 if ok else 503)

    async def metrics(self, request: web.Request) -> web.Response:
        """Every metric in the Prometheus text format."""
        text = self.registry.render()
        return web.Response(body=text.encode(), headers={"Content-Type": CONTENT_TYPE})
