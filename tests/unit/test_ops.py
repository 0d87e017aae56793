"""Operations: the Prometheus exposition format, /metrics and /healthz of the real bot, the job log line."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from bot.app import NanoBot
from bot.errors import AuthFailed, ImageTooLarge, ProviderTimeout, ProviderUnavailable, Refused, SafetyBlocked
from bot.ops.logs import FORMAT, OneLineFormatter
from bot.ops.metrics import Metrics, error_label, format_value, outcome_of
from bot.storage.db import Database
from tests.botenv import eventually, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "ops-secret-gemini-key"
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{.*\})? (\S+)$")


def gemini(fake: FakeGemini) -> dict[str, Any]:
    return {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY}


def parse(text: str) -> dict[str, float]:
    """Samples of an exposition, keyed by `name{labels}` exactly as written."""
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


async def get(bot: NanoBot, path: str) -> tuple[int, str, str]:
    """(status, content type header, body) of a GET on the bot's health server."""
    assert bot.health is not None
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{bot.health.port}{path}") as response,
    ):
        return response.status, response.headers["Content-Type"], await response.text()


# --- the exposition format ---------------------------------------------------------------------------


def test_exposition_escapes_labels_and_help() -> None:
    metrics = Metrics()
    counter = metrics.counter("x_total", 'Help with \\ and\na newline and "quotes".', ("path",))
    counter.labels(path='a"b\\c\nd').inc()
    counter.labels(path='a"b\\c\nd').inc(2)
    metrics.counter("plain_total", "Never counted.")
    assert metrics.render() == (
        '# HELP x_total Help with \\\\ and\\na newline and "quotes".\n'
        "# TYPE x_total counter\n"
        'x_total{path="a\\"b\\\\c\\nd"} 3\n'
        "# HELP plain_total Never counted.\n"
        "# TYPE plain_total counter\n"
        "plain_total 0\n"
    )


def test_histogram_buckets_are_cumulative_and_end_with_inf() -> None:
    metrics = Metrics()
    hist = metrics.histogram("d_seconds", "Durations.", ("kind",), buckets=(0.5, 1, 5))
    for value in (0.1, 0.5, 1.0, 3.0, 7.0):  # a bound is inclusive: 0.5 and 1.0 fall in le=0.5 and le=1
        hist.labels(kind="imagine").observe(value)
    lines = metrics.render().splitlines()
    assert lines == [
        "# HELP d_seconds Durations.",
        "# TYPE d_seconds histogram",
        'd_seconds_bucket{kind="imagine",le="0.5"} 2',
        'd_seconds_bucket{kind="imagine",le="1"} 3',
        'd_seconds_bucket{kind="imagine",le="5"} 4',
        'd_seconds_bucket{kind="imagine",le="+Inf"} 5',
        'd_seconds_sum{kind="imagine"} 11.6',
        'd_seconds_count{kind="imagine"} 5',
    ]


def test_gauges_read_at_scrape_time_and_registration_is_idempotent() -> None:
    metrics = Metrics()
    depth = [0]
    metrics.gauge("depth", "Waiting.", read=lambda: depth[0])
    set_gauge = metrics.gauge("temperature", "Set by hand.")
    set_gauge.set(-1.5)
    depth[0] = 4
    samples = parse(metrics.render())
    assert samples == {"depth": 4, "temperature": -1.5}
    assert metrics.counter("c_total", "c", ("a",)) is metrics.counter("c_total", "c", ("a",))
    with pytest.raises(ValueError):
        metrics.gauge("c_total", "now a gauge")
    with pytest.raises(ValueError):
        metrics.counter("c_total", "c", ("a",)).labels(b="x")
    with pytest.raises(ValueError):
        metrics.counter("bad-name", "x")
    with pytest.raises(ValueError):
        metrics.histogram("h", "x", ("le",))
    with pytest.raises(ValueError):
        metrics.counter("c_total", "c", ("a",)).labels(a="x").inc(-1)


def test_values_and_outcomes() -> None:
    assert [format_value(v) for v in (3.0, 0.25, float("inf"), float("-inf"), 1e20)] == [
        "3",
        "0.25",
        "+Inf",
        "-Inf",
        "1e+20",
    ]
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
            fake, tmp_path, gemini(provider), health_port=0, health_host="127.0.0.1"
        ) as bot:
            ok = await fake.send_slash("imagine", {"prompt": "a lighthouse at dawn"})
            assert ok.files(await ok.wait_done())
            provider.script("prompt_blocked")
            blocked = await fake.send_slash("imagine", {"prompt": "a forbidden thing"})
            assert "safety" in (await blocked.wait_done())["embeds"][0]["title"].lower()
            provider.script("unavailable", "unavailable", "unavailable")
            down = await fake.send_slash("imagine", {"prompt": "a storm"})
            assert "unavailable" in (await down.wait_done())["embeds"][0]["title"].lower()
            await eventually(lambda: bot.service.metrics.credits.value() == 1)

            status, content_type, text = await get(bot, "/metrics")
            assert status == 200
            assert content_type == "text/plain; version=0.0.4; charset=utf-8"
            samples = parse(text)
            jobs = {k: v for k, v in samples.items() if k.startswith("nanobot_jobs_total")}
            assert jobs == {
                'nanobot_jobs_total{provider="google",kind="imagine",outcome="ok"}': 1,
                'nanobot_jobs_total{provider="google",kind="imagine",outcome="safety_blocked"}': 1,
                'nanobot_jobs_total{provider="google",kind="imagine",outcome="unavailable"}': 1,
            }
            errors = {k: v for k, v in samples.items() if k.startswith("nanobot_provider_errors_total")}
            assert errors == {
                'nanobot_provider_errors_total{provider="google",error="safety_blocked"}': 1,
                'nanobot_provider_errors_total{provider="google",error="unavailable"}': 1,
            }
            assert samples['nanobot_job_duration_seconds_count{provider="google",kind="imagine"}'] == 3
            assert (
                samples['nanobot_job_duration_seconds_bucket{provider="google",kind="imagine",le="+Inf"}']
                == 3
            )
            # One 1K gemini-2.5-flash-image image costs 1 credit; blocked and failed jobs cost nothing.
            assert samples["nanobot_credits_spent_total"] == 1
            assert samples["nanobot_queue_depth"] == 0
            assert samples["nanobot_jobs_running"] == 0
            assert "# TYPE nanobot_job_duration_seconds histogram" in text

            status, content_type, text = await get(bot, "/healthz")
            assert status == 200 and content_type.startswith("application/json")
            body = json.loads(text)
            assert body["status"] == "ok" and body["database"] == "ok"
            assert body["shards_ready"] == 1 and body["queue_depth"] == 0 and body["running"] == 0
            assert "latency_ms" in body and "reason" not in body

            # The database stops answering: 503 with the reason (and no URL in it).
            real = bot.db
            assert real is not None
            missing = f"sqlite+aiosqlite:///{tmp_path / 'gone' / 'gone.db'}"  # its folder does not exist
            broken = Database(create_async_engine(missing), missing)
            assert bot.health is not None
            bot.health.database = lambda: broken  # what /healthz asks for the database
            try:
                status, _, text = await get(bot, "/healthz")
            finally:
                bot.health.database = lambda: real
                await broken.close()
            body = json.loads(text)
            assert status == 503 and body["status"] == "unavailable"
            assert body["database"].startswith("error: ") and "database" in body["reason"]
            assert "gone.db" not in text
            assert (await get(bot, "/healthz"))[0] == 200

    done = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job done ")]
    assert [re.search(r"outcome=(\S+)", line)[1] for line in done] == [  # type: ignore[index]
        "ok",
        "safety_blocked",
        "unavailable",
    ]
    alice = fake.users["alice"]["id"]
    pattern = (
        r"job done id=\d+ kind=imagine guild=\d+ user=(\d+) provider=google "
        r"model=gemini-2\.5-flash-image duration=\d+\.\d\d outcome=\w+ cost=(\S+)"
    )
    matches = [re.fullmatch(pattern, line) for line in done]
    assert all(matches), done
    assert [(m[1], m[2]) for m in matches if m] == [(str(alice), "1"), (str(alice), "0"), (str(alice), "0")]
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert KEY not in logged
    assert not any(p in line for line in done for p in ("lighthouse", "forbidden", "storm"))


async def test_healthz_fails_when_the_gateway_is_gone_and_stops_with_the_bot(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(
            fake, tmp_path, gemini(provider), health_port=0, health_host="127.0.0.1"
        ) as bot:
            assert (await get(bot, "/healthz"))[0] == 200
            assert bot.health is not None
            port = bot.health.port
            await fake.stop()  # Discord goes away: the gateway closes and reconnecting is refused
            await eventually(lambda: all(s.is_closed() for s in bot.shards.values()))
            status, _, text = await get(bot, "/healthz")
            body = json.loads(text)
            assert status == 503 and body["status"] == "unavailable"
            assert body["shards_ready"] == 0 and body["database"] == "ok"
            assert "gateway not connected" in body["reason"]
        # close() stopped the server.
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as session:
                await session.get(f"http://127.0.0.1:{port}/healthz")


def dockerfile_healthcheck() -> str:
    """The shell command of the Dockerfile's HEALTHCHECK (continuation lines joined)."""
    text = (Path(__file__).resolve().parents[2] / "Dockerfile").read_text()
    joined = re.sub(r"\\\n\s*", " ", text)
    match = re.search(r"^HEALTHCHECK .*? CMD (.+)$", joined, re.MULTILINE)
    assert match, "the Dockerfile has no HEALTHCHECK … CMD line"
    return match[1].strip()


async def run_healthcheck(command: str, port: int) -> int:
    """Run the image's health check as Docker would (sh -c), against this port; its exit status."""
    env = {**os.environ, "HEALTH_PORT": str(port)}
    proc = await asyncio.create_subprocess_shell(
        command.replace("python ", f"{sys.executable} ", 1),
        env=env,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    return await asyncio.wait_for(proc.wait(), 20)


async def test_the_docker_healthcheck_command_follows_healthz(tmp_path: Path) -> None:
    command = dockerfile_healthcheck()
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(
            fake, tmp_path, gemini(provider), health_port=0, health_host="127.0.0.1"
        ) as bot:
            assert bot.health is not None
            port = bot.health.port
            assert await run_healthcheck(command, port) == 0  # healthy
            await fake.stop()
            await eventually(lambda: all(s.is_closed() for s in bot.shards.values()))
            assert await run_healthcheck(command, port) != 0  # 503: Docker marks it unhealthy
    assert await run_healthcheck(command, port) != 0  # nothing listening


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
