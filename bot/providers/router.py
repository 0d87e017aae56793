"""Picks a provider by model or name, and falls back in configured order when one is unavailable."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from typing import NamedTuple

from bot.config import ProviderConfig
from bot.errors import BadRequest, InputError, NoImageReturned, ProviderError, ProviderUnavailable
from bot.i18n import Text, Words
from bot.providers.base import GenerateRequest, GenerateResult, ImageProvider, UpscaleRequest
from bot.providers.breaker import Breaker, State
from bot.providers.pacing import Pacer

log = logging.getLogger(__name__)

LOCAL = ProviderConfig(name="local", kind="local")


class ProviderStatus(NamedTuple):
    """One provider's health, for /status-style reporting."""

    name: str
    kind: str
    state: State
    consecutive_failures: int


class Router:
    """The configured providers, in fallback order, plus the local upscaler at the end."""

    def __init__(
        self,
        providers: Sequence[ImageProvider],
        local: ImageProvider,
        *,
        breaker_failures: int = 5,
        breaker_cooldown: float = 60.0,
        fallback_on_no_image: bool = False,
        pacers: Sequence[Pacer] = (),
        concurrency: Mapping[str, int] | None = None,
    ) -> None:
        self.providers = list(providers)
        #: Calls at once per provider with a `concurrency` (fallback calls included).
        self.gates = {name: asyncio.Semaphore(n) for name, n in (concurrency or {}).items()}
        #: The providers' requests-per-minute limits, split between the live processes.
        self.pacers = list(pacers)
        self.local = local
        self.fallback_on_no_image = fallback_on_no_image
        self.breakers = {p.name: Breaker(p.name, breaker_failures, breaker_cooldown) for p in self.providers}

    def share(self, processes: int) -> None:
        """This process takes 1/processes of every provider's requests per minute."""
        for pacer in self.pacers:
            pacer.share(processes)

    def status(self) -> list[ProviderStatus]:
        """Each configured provider's breaker state and current run of failures."""
        statuses = []
        for provider in self.providers:
            breaker = self.breakers[provider.name]
            statuses.append(
                ProviderStatus(provider.name, provider.kind, breaker.state, breaker.consecutive_failures)
            )
        return statuses

    def _ready(self, providers: list[ImageProvider]) -> list[ImageProvider]:
        """Providers whose breaker lets a call through; if none does, the one back soonest (it fails fast)."""
        ready = [p for p in providers if self.breakers[p.name].available()]
        return ready or [min(providers, key=lambda p: self.breakers[p.name].retry_in())]

    async def _call(
        self, provider: ImageProvider, call: Callable[[], Awaitable[GenerateResult]]
    ) -> GenerateResult:
        """Run a provider call through its breaker (the local upscaler has none), within the provider's
        `concurrency`: the queue's lanes count a job against the provider it was routed to, and this
        keeps a fallback provider's own limit too."""
        breaker = self.breakers.get(provider.name)
        if breaker is None:
            return await call()
        gate = self.gates.get(provider.name)
        if gate is None:
            return await breaker.call(call)
        async with gate:
            return await breaker.call(call)

    def _may_fall_back(self, error: ProviderError) -> bool:
        """Whether the next provider may take over after this error (never after a safety block)."""
        return error.fallback_ok or (self.fallback_on_no_image and isinstance(error, NoImageReturned))

    def get(self, name: str) -> ImageProvider:
        """A provider by its configured name."""
        for provider in [*self.providers, self.local]:
            if provider.name == name:
                return provider
        names: Words = ", ".join(p.name for p in self.providers) or Text("provider.router.none")
        raise InputError(Text("provider.router.unknown_provider", name=name, names=names))

    def models(self) -> list[tuple[str, str]]:
        """Every (provider, model) pair that can generate, in fallback order."""
        return [(p.name, m) for p in self.providers for m in p.models]

    def candidates(self, provider: str | None, model: str | None) -> list[ImageProvider]:
        """Providers to try, in order, for a provider name and/or a model (paused ones left out)."""
        if provider is not None:
            chosen = self.get(provider)
            if model is not None and model not in chosen.models:
                models = ", ".join(chosen.models)
                unserved = Text(
                    "provider.router.model_not_served", provider=chosen.name, model=model, models=models
                )
                raise InputError(unserved)
            return [chosen]
        if not self.providers:
            raise InputError(Text("provider.router.none_configured"))
        if model is None:
            return self._ready(self.providers)
        serving = [p for p in self.providers if model in p.models]
        if not serving:
            known = ", ".join(sorted({m for _, m in self.models()}))
            raise InputError(Text("provider.router.unknown_model", model=model, known=known))
        return self._ready(serving)

    async def generate(
        self,
        request: GenerateRequest,
        provider: str | None = None,
        *,
        allow: Callable[[ImageProvider], bool] | None = None,
    ) -> GenerateResult:
        """Try each candidate; move on only when the failure is the provider's, not the prompt's.

        `allow` leaves out candidates the job may not use (one that costs more than was reserved).
        """
        every = self.candidates(provider, request.model)
        candidates = [c for c in every if allow is None or allow(c)]
        if not candidates:
            dearer = Text("provider.router.dearer", provider=every[0].name)
            raise ProviderUnavailable(dearer, provider=every[0].name)
        if len(candidates) < len(every):
            log.info("skipping %d dearer fallback provider(s)", len(every) - len(candidates))
        last: ProviderError | None = None
        for candidate in candidates:
            try:
                return await self._call(candidate, partial(candidate.generate, request))
            except ProviderError as e:
                if not self._may_fall_back(e) or candidate is candidates[-1]:
                    raise
                log.warning("provider %s failed (%s); trying the next one", candidate.name, type(e).__name__)
                last = e
        raise last or BadRequest(Text("provider.router.no_candidate"))

    def upscalers(self, provider: str | None) -> list[ImageProvider]:
        """Upscale-capable providers in order (paused ones left out), then the local upscaler."""
        if provider is not None:
            chosen = self.get(provider)
            if not chosen.can_upscale:
                raise InputError(Text("provider.router.cannot_upscale", provider=chosen.name))
            return [chosen]
        capable = [p for p in self.providers if p.can_upscale and self.breakers[p.name].available()]
        return [*capable, self.local]

    async def upscale(self, request: UpscaleRequest, provider: str | None = None) -> GenerateResult:
        """Upscale with the first capable provider, falling back to the local upscaler."""
        candidates = self.upscalers(provider)
        for candidate in candidates[:-1]:
            try:
                return await self._call(candidate, partial(candidate.upscale, request))
            except ProviderError as e:
                if not e.fallback_ok:
                    raise
                log.warning("upscaler %s failed (%s); trying the next one", candidate.name, type(e).__name__)
        return await self._call(candidates[-1], partial(candidates[-1].upscale, request))
