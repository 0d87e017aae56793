"""Operations: the bot's Prometheus registry, /metrics, /livez, /readyz and /healthz of the real bot, the job
log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from sqlalchemy.ext.asyncio import create_async_engine

from bot import __version__
from bot.app import NanoBot
from bot.errors import AuthFailed, ImageTooLarge, ProviderTimeout, ProviderUnavailable, Refused, SafetyBlocked
from bot.ops import metrics as metrics_module
from bot.ops.logs import FORMAT, OneLineFormatter
from bot.ops.metrics import JOB_BUCKETS, Metrics, error_label, outcome_of
from bot.storage.db import Database
from tests.botenv import eventually, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "ops-secret-gemini-key"
#: The series the bot had before prometheus-client, with their types and labels: dashboards rely on them.
OLD_SERIES = {
    "nanobot_jobs": ("counter", {"provider", "kind", "outcome"}),
    "nanobot_job_duration_seconds": ("histogram", {"provider", "kind"}),
    "nanobot_provider_errors": ("counter", {"provider", "error"}),
    "nanobot_credits_spent": ("counter", set()),
    "nanobot_queue_depth": ("gauge", set()),
    "nanobot_jobs_running": ("gauge", set()),
}
NEW_SERIES = {
    "nanobot_build_info": ("gauge", {"version"}),
    "nanobot_provider_circuit_state": ("gauge", {"provider", "state"}),
    "nanobot_provider_consecutive_failures": ("gauge", {"provider"}),
    "nanobot_gateway_shards_ready": ("gauge", set()),
    "nanobot_gateway_shards": ("gauge", set()),
    "nanobot_gateway_latency_seconds": ("gauge", {"shard"}),
    "nanobot_ready": ("gauge", set()),
    "nanobot_provider_request_duration_seconds": ("histogram", {"provider"}),
    "nanobot_provider_retries": ("counter", {"provider"}),
    "nanobot_provider_key_rests": ("counter", {"provider"}),
    "nanobot_operator_budget_credits": ("gauge", set()),
    "nanobot_operator_spent_credits": ("gauge", set()),
}
#: What prometheus-client's standard collectors add (process memory and CPU, the collector, Python).
STANDARD = ("process_resident_memory_bytes", "process_cpu_seconds_total", "python_gc_collections_total")


def gemini(fake: FakeGemini) -> dict[str, Any]:
    return {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY}


async def get(bot: NanoBot, path: str) -> tuple[int, str, str]:
    """(status, content type header, body) of a GET on the bot's health server."""
    assert bot.health is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{bot.health.port}{path}") as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


class Scrape:
    """One /metrics answer, parsed by prometheus-client's own parser."""

    def __init__(self, text: str) -> None:
        self.families = {f.name: f for f in text_string_to_metric_families(text)}
        self.samples: list[Sample] = [s for f in self.families.values() for s in f.samples]

    def value(self, name: str, **labels: str) -> float | None:
        """A sample's value by its exact name and labels (None when absent)."""
        found = [s.value for s in self.samples if s.name == name and s.labels == labels]
        return found[0] if found else None

    def has(self, name: str) -> bool:
        """Whether any sample has this name."""
        return any(s.name == name for s in self.samples)

    def series(self, name: str) -> dict[tuple[tuple[str, str], ...], float]:
        """Every sample of one name: sorted label pairs → value."""
        return {tuple(sorted(s.labels.items())): s.value for s in self.samples if s.name == name}

    def check_declared(self, expected: dict[str, tuple[str, set[str]]]) -> None:
        """Each family exists with its type, and each of its samples carries exactly its labels."""
        for name, (kind, labels) in expected.items():
            family = self.families.get(name)
            assert family is not None, f"{name} is missing"
            assert family.type == kind, (name, family.type)
            for sample in family.samples:
                assert set(sample.labels) - {"le"} == labels, (name, sample.labels)


async def scrape(bot: NanoBot) -> Scrape:
    """GET /metrics of the real bot (checking its status and content type), parsed."""
    status, content_type, text = await get(bot, "/metrics")
    assert status == 200
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"  # no Accept: the classic format
    return Scrape(text)


# --- the registry ----------------------------------------------------------------------------------


def test_every_bot_has_its_own_registry_with_the_standard_collectors() -> None:
    first, second = Metrics(version="1.2.3"), Metrics()
    first.jobs.finished("google", "imagine", "ok", 0.7, None)
    first.jobs.spent(150)
    assert first.registry.get_sample_value("nanobot_credits_spent_total") == 1.5
    assert second.registry.get_sample_value("nanobot_credits_spent_total") == 0
    labels = {"provider": "google", "kind": "imagine", "outcome": "ok"}
    assert second.registry.get_sample_value("nanobot_jobs_total", labels) is None
    assert REGISTRY.get_sample_value("nanobot_credits_spent_total") is None  # never the global one
    scraped = Scrape(first.render()[0].decode())
    scraped.check_declared({**OLD_SERIES, **NEW_SERIES})
    assert all(scraped.has(name) for name in STANDARD)
    assert scraped.value("nanobot_build_info", version="1.2.3") == 1
    assert not [s.name for s in scraped.samples if s.name.endswith("_created")]


def test_the_scraper_gets_the_format_it_asks_for() -> None:
    metrics = Metrics()
    metrics.jobs.spent(100)
    body, content_type = metrics.render("application/openmetrics-text;version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().endswith("# EOF\n") and "nanobot_credits_spent_total 1.0" in body.decode()
    body, content_type = metrics.render("text/plain;version=0.0.4")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8" and b"# EOF" not in body


def test_job_duration_keeps_its_buckets() -> None:
    metrics = Metrics()
    for seconds in (0.5, 3.0, 700.0):  # a bound is inclusive: 0.5 falls in le=0.5
        metrics.jobs.finished("google", "edit", "ok", seconds, None)
    scraped = Scrape(metrics.render()[0].decode())
    buckets = {
        float(s.labels["le"]): s.value
        for s in scraped.samples
        if s.name == "nanobot_job_duration_seconds_bucket"
    }
    assert list(buckets) == [*JOB_BUCKETS, float("inf")]
    assert buckets[0.5] == 1 and buckets[2.5] == 1 and buckets[5.0] == 2 and buckets[600.0] == 2
    assert buckets[float("inf")] == 3
    assert scraped.value("nanobot_job_duration_seconds_sum", provider="google", kind="edit") == 703.5


async def test_refresh_reads_the_database_later_and_keeps_the_last_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metrics = Metrics()
    answers: list[float | BaseException | None] = [4.5, RuntimeError("database gone"), None]

    async def read_spent() -> float:
        answer = answers.pop(0)
        if answer is None:
            await asyncio.Event().wait()  # the database never answers
        if isinstance(answer, BaseException):
            raise answer
        assert isinstance(answer, float)
        return answer

    metrics.watch_operator(20.0, read_spent)
    assert metrics.registry.get_sample_value("nanobot_operator_budget_credits") == 20
    assert metrics.registry.get_sample_value("nanobot_operator_spent_credits") is None  # not read yet
    await metrics.refresh()
    assert metrics.registry.get_sample_value("nanobot_operator_spent_credits") == 4.5
    await metrics.refresh()  # fails: the last value stays
    assert metrics.registry.get_sample_value("nanobot_operator_spent_credits") == 4.5
    monkeypatch.setattr(metrics_module, "REFRESH_TIMEOUT", 0.01)
    await metrics.refresh()  # times out: the last value stays
    assert metrics.registry.get_sample_value("nanobot_operator_spent_credits") == 4.5
    assert not answers
    unset = Metrics()
    unset.watch_operator(None, read_spent)
    assert unset.registry.get_sample_value("nanobot_operator_budget_credits") is None


def test_values_and_outcomes() -> None:
    assert outcome_of(None) == "ok"
    assert outcome_of(SafetyBlocked("no", provider="p")) == "safety_blocked"
    assert outcome_of(ProviderUnavailable("down")) == "unavailable"
    assert outcome_of(ProviderTimeout("slow")) == "timeout"
    assert outcome_of(ImageTooLarge("big")) == "bad_input"
    assert outcome_of(Refused("⏳ Queue full", "wait")) == "refused"
    assert outcome_of(asyncio.CancelledError()) == "cancelled"
    assert outcome_of(AuthFailed("key")) == "error"
    assert outcome_of(RuntimeError("bug")) == "error"
    assert error_label(AuthFailed("key")) == "auth_failed"


# --- the real bot ----------------------------------------------------------------------------------


async def test_metrics_health_and_job_log_of_the_real_bot(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.jobs.service")
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(
            fake,
            tmp_path,
            gemini(provider),
            health_port=0,
            health_host="127.0.0.1",
            breaker_failures=2,
            breaker_cooldown=600.0,
            operator_daily_budget=50,
        ) as bot:
            ok = await fake.send_slash("imagine", {"prompt": "a lighthouse at dawn"})
            assert ok.files(await ok.wait_done())
            provider.script("prompt_blocked")
            blocked = await fake.send_slash("imagine", {"prompt": "a forbidden thing"})
            assert "safety" in (await blocked.wait_done())["embeds"][0]["title"].lower()
            provider.script("unavailable", "unavailable", "unavailable")  # 503 three times: two retries
            down = await fake.send_slash("imagine", {"prompt": "a storm"})
            assert "unavailable" in (await down.wait_done())["embeds"][0]["title"].lower()
            # A quota 429 asking for 36 s (past the retry budget): the key rests, the breaker opens.
            provider.script("rate_limited")
            limited = await fake.send_slash("imagine", {"prompt": "a flood"})
            await limited.wait_done()
            registry = bot.metrics.registry
            await eventually(lambda: registry.get_sample_value("nanobot_credits_spent_total") == 1)

            scraped = await scrape(bot)
            scraped.check_declared({**OLD_SERIES, **NEW_SERIES})
            assert scraped.series("nanobot_jobs_total") == {
                (("kind", "imagine"), ("outcome", outcome), ("provider", "google")): 1
                for outcome in ("ok", "safety_blocked", "unavailable", "rate_limited")
            }
            assert scraped.series("nanobot_provider_errors_total") == {
                (("error", "safety_blocked"), ("provider", "google")): 1,
                (("error", "unavailable"), ("provider", "google")): 1,
                (("error", "rate_limited"), ("provider", "google")): 1,
            }
            assert scraped.value("nanobot_job_duration_seconds_count", provider="google", kind="imagine") == 4
            assert (
                scraped.value(
                    "nanobot_job_duration_seconds_bucket", provider="google", kind="imagine", le="+Inf"
                )
                == 4
            )
            # One 1K gemini-2.5-flash-image image costs 1 credit; blocked and failed jobs cost nothing.
            assert scraped.value("nanobot_credits_spent_total") == 1
            assert scraped.value("nanobot_queue_depth") == 0 and scraped.value("nanobot_jobs_running") == 0
            # Every HTTP attempt is timed: 1 + 1 + 3 (two of them retries) + 1.
            assert provider.calls == 6
            requests = scraped.value("nanobot_provider_request_duration_seconds_count", provider="google")
            assert requests == provider.calls
            assert scraped.value("nanobot_provider_retries_total", provider="google") == 2
            assert scraped.value("nanobot_provider_key_rests_total", provider="google") == 1
            assert scraped.series("nanobot_provider_circuit_state") == {
                (("provider", "google"), ("state", "closed")): 0,
                (("provider", "google"), ("state", "open")): 1,
                (("provider", "google"), ("state", "half-open")): 0,
            }
            assert scraped.value("nanobot_provider_consecutive_failures", provider="google") == 2
            assert scraped.value("nanobot_build_info", version=__version__) == 1
            assert scraped.value("nanobot_gateway_shards_ready") == 1
            assert scraped.value("nanobot_gateway_shards") == 1
            latency = scraped.value("nanobot_gateway_latency_seconds", shard="0")  # measured from HELLO on
            assert latency is not None and latency >= 0
            assert scraped.value("nanobot_ready") == 1
            assert scraped.value("nanobot_operator_budget_credits") == 50
            assert scraped.value("nanobot_operator_spent_credits") == 1  # read from the quota store
            assert all(scraped.has(name) for name in STANDARD)

            for path in ("/readyz", "/healthz"):
                status, content_type, text = await get(bot, path)
                assert status == 200 and content_type.startswith("application/json")
                body = json.loads(text)
                assert body["status"] == "ok" and body["database"] == "ok"
                assert body["version"] == __version__
                assert body["shards_ready"] == 1 and body["queue_depth"] == 0 and body["running"] == 0
                assert "latency_ms" in body and "reason" not in body

            # The database stops answering: 503 with the reason (and no URL in it); alive all the same.
            real = bot.db
            assert real is not None
            missing = f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'gone.db'}"  # its folder does not exist
            broken = Database(create_async_engine(missing), missing)
            assert bot.health is not None
            bot.health.database = lambda: broken  # what /readyz asks for the database
            try:
                answers = {path: await get(bot, path) for path in ("/readyz", "/healthz", "/livez")}
                not_ready = (await scrape(bot)).value("nanobot_ready")
            finally:
                bot.health.database = lambda: real
                await broken.close()
            for path in ("/readyz", "/healthz"):
                status, _, text = answers[path]
                body = json.loads(text)
                assert status == 503 and body["status"] == "unavailable", path
                assert body["database"].startswith("error: ") and "database" in body["reason"]
                assert "gone.db" not in text
            assert answers["/livez"][0] == 200
            assert not_ready == 0
            assert (await get(bot, "/readyz"))[0] == 200

    done = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job done ")]
    assert [re.search(r"outcome=(\S+)", line)[1] for line in done] == [  # type: ignore[index]
        "ok",
        "safety_blocked",
        "unavailable",
        "rate_limited",
    ]
    alice = fake.users["alice"]["id"]
    pattern = (
        r"job done id=\d+ kind=imagine guild=\d+ user=(\d+) provider=google "
        r"model=gemini-2\.5-flash-image duration=\d+\.\d\d outcome=\w+ cost=(\S+)"
    )
    matches = [re.fullmatch(pattern, line) for line in done]
    assert all(matches), done
    assert [(m[1], m[2]) for m in matches if m] == [(str(alice), "1")] + [(str(alice), "0")] * 3
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert KEY not in logged
    assert not any(p in line for line in done for p in ("lighthouse", "forbidden", "storm", "flood"))


async def test_readiness_fails_when_the_gateway_is_gone_and_stops_with_the_bot(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(
            fake, tmp_path, gemini(provider), health_port=0, health_host="127.0.0.1"
        ) as bot:
            assert (await get(bot, "/readyz"))[0] == 200
            assert bot.health is not None
            port = bot.health.port
            await fake.stop()  # Discord goes away: the gateway closes and reconnecting is refused
            await eventually(lambda: all(s.is_closed() for s in bot.shards.values()))
            for path in ("/readyz", "/healthz"):
                status, _, text = await get(bot, path)
                body = json.loads(text)
                assert status == 503 and body["status"] == "unavailable", path
                assert body["shards_ready"] == 0 and body["database"] == "ok"
                assert "gateway not connected" in body["reason"]
            status, _, text = await get(bot, "/livez")
            assert status == 200 and json.loads(text) == {"status": "ok", "version": __version__}
            scraped = await scrape(bot)
            assert scraped.value("nanobot_gateway_shards_ready") == 0
            assert scraped.value("nanobot_gateway_shards") == 1
            assert scraped.value("nanobot_ready") == 0
        # close() stopped the server.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as session:
                await session.get(f"http://127.0.0.1:{port}/livez")


def test_a_traceback_is_logged_on_one_line() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter(FORMAT))
    logger = logging.getLogger("tests.one-line")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("two\nlines")
        except ValueError:
            logger.error("job %s failed", 7, exc_info=True)
    finally:
        logger.removeHandler(handler)
    [line] = stream.getvalue().splitlines()
    assert "ERROR tests.one-line: job 7 failed\\nTraceback (most recent call last):" in line
    assert line.endswith("ValueError: two\\nlines")
