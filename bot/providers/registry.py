"""Builds the provider interfaces from the settings: one per [[providers]] entry, by kind."""

from __future__ import annotations

import aiohttp

from bot.config import ProviderConfig, Settings
from bot.providers.common import ProviderBase
from bot.providers.gemini import GeminiProvider
from bot.providers.http import HttpClient, Limits
from bot.providers.local import LocalProvider
from bot.providers.nbpro import NBProProvider
from bot.providers.openai_images import OpenAIImagesProvider
from bot.providers.retry import RetryPolicy
from bot.providers.router import LOCAL, Router
from bot.providers.task import TaskProvider
from bot.providers.telemetry import NO_TELEMETRY, Telemetry

INTERFACES: dict[str, type[ProviderBase]] = {
    "gemini": GeminiProvider,
    "openai-images": OpenAIImagesProvider,
    "nbpro": NBProProvider,
    "task": TaskProvider,
    "local": LocalProvider,
}


def limits_for(settings: Settings, config: ProviderConfig) -> Limits:
    """Timeouts and caps for one provider (its own timeout overrides the global one)."""
    return Limits(
        request_timeout=config.timeout or settings.request_timeout,
        connect_timeout=settings.connect_timeout,
        download_timeout=settings.download_timeout,
        max_download_bytes=settings.max_download_bytes,
        max_response_bytes=settings.max_response_bytes,
        poll_interval=settings.task_poll_interval,
        poll_deadline=settings.task_deadline,
    )


def build_router(
    settings: Settings, session: aiohttp.ClientSession, telemetry: Telemetry = NO_TELEMETRY
) -> Router:
    """Every configured provider on one shared session, plus the local upscaler, reporting to telemetry."""
    http = HttpClient(session, RetryPolicy.from_settings(settings, telemetry))
    providers = [INTERFACES[c.kind](c, http, limits_for(settings, c)) for c in settings.providers]
    generating = [p for p in providers if p.kind != "local"]
    local = next((p for p in providers if p.kind == "local"), None)
    return Router(
        generating,
        local or LocalProvider(LOCAL, None, limits_for(settings, LOCAL)),
        breaker_failures=settings.breaker_failures,
        breaker_cooldown=settings.breaker_cooldown,
        fallback_on_no_image=settings.fallback_on_no_image,
        pacers=[p.keys.pacer for p in generating],
        concurrency={c.name: c.concurrency for c in settings.providers if c.concurrency},
    )
