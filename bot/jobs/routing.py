"""Where a job runs and what it costs: the provider and model chosen once, the price by the cost rules,
the queue lane, and which fallback providers the reservation can pay for."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from bot.config import Settings
from bot.errors import NanoBotError
from bot.jobs.conversations import replayable
from bot.jobs.spec import JobSpec
from bot.providers.base import GenerateResult, ImageProvider, ModelSpec
from bot.providers.router import Router
from bot.storage.guilds import GuildConfig
from bot.storage.turns import TurnStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a job runs, decided once at admission: what is charged, queued and run all read it."""

    #: The provider and model as the router is asked for them (None: any, in fallback order).
    provider: str | None
    model: str | None
    #: The provider the job is priced for and queued on (the first the router will try).
    lane: str
    #: That provider's wire format and its limits for the model.
    kind: str
    spec: ModelSpec


@dataclass(slots=True)
class JobRun:
    """One admitted job's bookkeeping: its id, where it runs, what it was priced at, and whether the
    provider has it."""

    job_id: str
    decision: Decision
    base_cents: int = 0
    replayed: int = 0
    #: The replayed history's images and text (what a job priced by tokens sends besides its own).
    history_images: int = 0
    history_chars: int = 0
    #: The request went to the provider (or the local upscaler): from here a cancel is charged.
    sent: bool = False
    #: When the job got its slot (time.monotonic()): what its running time counts from.
    started: float | None = None


class Routing:
    """Chooses the provider and model of a job and prices it (one place, so they never disagree)."""

    def __init__(self, settings: Settings, router: Router, turns: TurnStore) -> None:
        self.settings = settings
        self.router = router
        self.turns = turns

    def spec_for(self, provider: str | None, model: str | None) -> ModelSpec:
        """The limits of the model the job will most likely use."""
        return self.router.candidates(provider, model)[0].spec(model)

    def route(self, job: JobSpec) -> tuple[str | None, str | None]:
        """Provider and model: as asked, else the parent's when it is still configured.

        The parent's model is the one that was asked for (a provider may report its own name for it).
        """
        if job.provider or job.model or job.parent is None:
            return job.provider, job.model
        parent = job.parent
        asked = parent.options.get("requested_model") or parent.model
        if any(p == parent.provider and m == asked for p, m in self.router.models()):
            return parent.provider, str(asked)
        return None, None

    def decide(self, job: JobSpec) -> Decision:
        """The provider and model of a job, once (an upscale: the first capable provider, else local)."""
        if job.kind == "upscale":
            upscaler = self.router.upscalers(job.provider)[0]
            return Decision(job.provider, None, upscaler.name, upscaler.kind, self.router.local.spec(None))
        provider, model = self.route(job)
        candidate = self.router.candidates(provider, model)[0]
        return Decision(provider, model, candidate.name, candidate.kind, candidate.spec(model))

    def lane(self, job: JobSpec) -> str:
        """The provider whose concurrency limit the job counts against."""
        if job.kind == "upscale":
            return self.router.upscalers(job.provider)[0].name
        provider, model = self.route(job)
        return self.router.candidates(provider, model)[0].name

    def labels(self, job: JobSpec, error: BaseException | None) -> tuple[str, str]:
        """Provider and model of a failed job: the failing provider's, else where it would have run."""
        provider: str | None = getattr(error, "provider", None)
        try:
            provider = provider or self.lane(job)
            model = self.route(job)[1] if job.kind != "upscale" else None
            return provider, model or self.router.get(provider).spec(None).name
        except NanoBotError:
            return provider or job.provider or "none", job.model or "-"

    def with_guild_defaults(self, job: JobSpec, config: GuildConfig) -> JobSpec:
        """A new job with no model chosen uses the server's default model, when it set one."""
        if job.provider or job.model or job.parent is not None or job.kind == "upscale":
            return job
        if config.default_model and any(m == config.default_model for _, m in self.router.models()):
            return replace(job, provider=config.default_provider, model=config.default_model)
        return job

    async def look_back(self, job: JobSpec, run: JobRun) -> int:
        """The earlier turns a refine replays (remembered in run, for its inputs count and its price):
        none for a job that is not a refine, or whose conversation has nothing replayable."""
        if job.kind != "upscale" and job.parent is not None and job.use_history:
            chain, _ = await self.turns.lineage(job.parent.id, self.settings.history_depth)
            replayed = [turn for turn in chain if replayable(turn)]
            run.replayed = len(replayed)
            # Each replayed turn sends its prompt and inputs, and the model's text and first image.
            run.history_images = sum(len(turn.input_images) + 1 for turn in replayed)
            run.history_chars = sum(len(turn.prompt) + len(turn.model_text or "") for turn in replayed)
        return run.replayed

    def estimate(self, job: JobSpec, run: JobRun) -> int:
        """The job's cost in cents by the cost rules, for the decided provider (remembered in run;
        look_back ran first)."""
        decision = run.decision
        if job.kind == "upscale":
            local = decision.lane == self.router.local.name
            run.base_cents = self.settings.costs.upscale(job.factor, local=local)
            return run.base_cents
        run.base_cents = self.price(job, decision.spec, run)
        return run.base_cents

    def price(self, job: JobSpec, spec: ModelSpec, run: JobRun) -> int:
        """What a generation job costs on one model: by tokens where it has token prices, else by image."""
        uses_parent = job.parent is not None and job.parent_image and not job.use_history
        references = len(job.inputs) + (1 if uses_parent else 0)
        resolution = job.resolution or spec.default_resolution
        costs = self.settings.costs
        if costs.token_price(spec.name) is not None:
            chars, images = len(job.prompt) + run.history_chars, references + run.history_images
            return costs.token_estimate(spec.name, resolution, job.count, chars=chars, images=images)
        return costs.generation(spec.name, resolution, job.count, references, run.replayed)

    def reported(self, job: JobSpec, run: JobRun, result: GenerateResult) -> int | None:
        """What the provider's reported usage costs by the token prices (None: priced by image, or
        nothing reported): the model it answered as, else the one it was asked for."""
        if job.kind == "upscale":
            return None
        try:
            return self.settings.costs.reported((result.model, run.decision.spec.name), result.usage)
        except (ArithmeticError, ValueError):  # a usage we cannot price: the reservation is charged
            log.warning("job %s: its reported usage could not be priced", run.job_id)
            return None

    def affordable(self, job: JobSpec, run: JobRun) -> Callable[[ImageProvider], bool]:
        """Whether a fallback provider costs no more than the job reserved (a dearer one is skipped:
        the difference was never reserved, and it is not given away)."""

        def allow(candidate: ImageProvider) -> bool:
            return self.price(job, candidate.spec(run.decision.model), run) <= run.base_cents

        return allow
