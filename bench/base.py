"""What every scenario shares: how much work to do, what it measured, and its name in the registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from bench.fakes import Assets
from bench.stats import Metrics

#: Stand-in for scenarios that serve no images (the database ones), so the 4K assets are not built.
NO_ASSETS = Assets(png_1k=b"", noisy_png_4k=b"", jpeg_4k=b"")


@dataclass(frozen=True)
class Config:
    """How much work each scenario does."""

    commands: int = 200  # also: members of `members`, and jobs per member of `backlog`
    jobs_4k: int = 50
    delay: float = 2.0
    solo_1k: int = 5
    solo_4k: int = 3
    floor_repeats: int = 3
    timeout: float = 900.0
    db_pairs: int = 1000  # quota reserve+commit pairs per phase
    db_concurrency: int = 16  # reservations (or conversations) in flight at once
    conversations: int = 40  # 8-turn conversations per phase
    backlog_members: int = 3  # members sending `commands` jobs each in `backlog`
    backlog_queue: int = 200  # MAX_QUEUED_PER_USER in `backlog` (within what the settings accept)
    native_jobs: int = 20  # concurrent jobs of `references-14` and `streamed`


@dataclass
class Outcome:
    """What a scenario measured, and every interaction that failed on the way."""

    metrics: Metrics
    failures: list[str] = field(default_factory=list)


Runner = Callable[[Config, Assets], Awaitable[Outcome]]


@dataclass(frozen=True)
class Scenario:
    """One named measurement; run is None while the subsystem it measures is not built yet."""

    name: str
    title: str
    run: Runner | None
    metrics: tuple[str, ...] = ()
    needs_assets: bool = True
