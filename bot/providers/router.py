"""Picks a provider by model or name, and falls back in configured order when one is unavailable."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from bot.config import ProviderConfig
from bot.errors import BadRequest, InputError, ProviderError
from bot.providers.base import GenerateRequest, GenerateResult, ImageProvider, UpscaleRequest

log = logging.getLogger(__name__)

LOCAL = ProviderConfig(name="local", kind="local")


class Router:
    """The configured providers, in fallback order, plus the local upscaler at the end."""

    def __init__(self, providers: Sequence[ImageProvider], local: ImageProvider) -> None:
        self.providers = list(providers)
        self.local = local

    def get(self, name: str) -> ImageProvider:
        """A provider by its configured name."""
        for provider in [*self.providers, self.local]:
            if provider.name == name:
                return provider
        names = ", ".join(p.name for p in self.providers) or "none"
        raise InputError(f"There is no provider named '{name}' (configured: {names})")

    def models(self) -> list[tuple[str, str]]:
        """Every (provider, model) pair that can generate, in fallback order."""
        return [(p.name, m) for p in self.providers for m in p.models]

    def candidates(self, provider: str | None, model: str | None) -> list[ImageProvider]:
        """Providers to try, in order, for a provider name and/or a model."""
        if provider is not None:
            chosen = self.get(provider)
            if model is not None and model not in chosen.models:
                raise InputError(f"{chosen.name} does not serve {model}; it has {', '.join(chosen.models)}")
            return [chosen]
        if not self.providers:
            raise InputError(
                "No image provider is configured: set GEMINI_API_KEY or add [[providers]] to nanobot.toml"
            )
        if model is None:
            return list(self.providers)
        serving = [p for p in self.providers if model in p.models]
        if not serving:
            known = ", ".join(sorted({m for _, m in self.models()}))
            raise InputError(f"No provider serves the model '{model}'. Available: {known}")
        return serving

    async def generate(self, request: GenerateRequest, provider: str | None = None) -> GenerateResult:
        """Try each candidate; move on only when the failure is the provider's, not the prompt's."""
        candidates = self.candidates(provider, request.model)
        last: ProviderError | None = None
        for candidate in candidates:
            try:
                return await candidate.generate(request)
            except ProviderError as e:
                if not e.fallback_ok or candidate is candidates[-1]:
                    raise
                log.warning("provider %s failed (%s); trying the next one", candidate.name, type(e).__name__)
                last = e
        raise last or BadRequest("no provider could take the request")

    def upscalers(self, provider: str | None) -> list[ImageProvider]:
        """Upscale-capable providers in order, then the local upscaler."""
        if provider is not None:
            chosen = self.get(provider)
            if not chosen.can_upscale:
                raise InputError(f"{chosen.name} cannot upscale; leave the provider out to use any")
            return [chosen]
        return [p for p in self.providers if p.can_upscale] + [self.local]

    async def upscale(self, request: UpscaleRequest, provider: str | None = None) -> GenerateResult:
        """Upscale with the first capable provider, falling back to the local upscaler."""
        candidates = self.upscalers(provider)
        for candidate in candidates[:-1]:
            try:
                return await candidate.upscale(request)
            except ProviderError as e:
                if not e.fallback_ok:
                    raise
                log.warning("upscaler %s failed (%s); trying the next one", candidate.name, type(e).__name__)
        return await candidates[-1].upscale(request)
