"""A reservation settled at the job's real cost on SQLite and PostgreSQL: each counter keeps its share
(the member's and the server's scaled, the operator's budget unscaled), the audit row shows the cost,
and a reported cost above the reservation charges the reservation."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.billing.admission import Admission, Who
from bot.billing.store import QuotaStore
from bot.storage.db import Database
from bot.storage.guilds import GuildConfig, GuildSettingsStore
from tests.fakes.settings import make_settings
from tests.pg import temp_database

G, CHANNEL, U = 4242, 77, 9
PRO = "gemini-3-pro-image-preview"


@pytest.fixture(params=["sqlite", "postgresql"])
async def admission(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Admission]:
    """Admission on a migrated database (SQLite and PostgreSQL), with an operator budget."""
    async with temp_database(request.param, tmp_path / "tokens.db") as url:
        db = await Database.open(url)
        yield Admission(make_settings(operator_daily_budget=100), QuotaStore(db), GuildSettingsStore(db))
        await db.close()


async def held(admission: Admission, guild_id: int, subject: str) -> tuple[int, int]:
    """(used, reserved) cents of a daily counter."""
    usage = await admission.quotas.usage(guild_id, subject, "day")
    return usage.used_cents, usage.reserved_cents


async def test_a_commit_at_the_reported_cost_releases_the_rest(admission: Admission) -> None:
    config = GuildConfig(cost_multiplier=2)
    charge = await admission.admit(
        Who(G, CHANNEL, U), config, cost_cents=500, kind="imagine", prompt="x", provider="g", model=PRO
    )
    assert charge.cost_cents == 1000
    await admission.commit(charge.with_reported(345))
    assert await held(admission, G, f"user:{U}") == (690, 0)  # the member pays ×2 of the real cost
    assert await held(admission, G, "guild") == (690, 0)
    assert await held(admission, 0, "operator") == (345, 0)  # the bot's budget, unscaled
    [row] = await admission.quotas.audit(G)
    assert (row.cost_cents, row.status, row.outcome) == (690, "committed", "ok (reserved 10)")
    await admission.commit(charge.with_reported(345))  # settling twice changes nothing
    assert await held(admission, G, f"user:{U}") == (690, 0)


async def test_a_reported_cost_above_the_reservation_charges_the_reservation(
    admission: Admission, caplog: pytest.LogCaptureFixture
) -> None:
    charge = await admission.admit(
        Who(G, CHANNEL, U),
        GuildConfig(),
        cost_cents=400,
        kind="imagine",
        prompt="secret",
        provider="g",
        model=PRO,
    )
    with caplog.at_level(logging.INFO, logger="bot.billing.admission"):
        await admission.commit(charge.with_reported(450))
    assert await held(admission, G, f"user:{U}") == (400, 0)
    [row] = await admission.quotas.audit(G)
    assert (row.cost_cents, row.outcome) == (400, "ok")
    [record] = [r for r in caplog.records if r.name == "bot.billing.admission"]
    assert record.levelno == logging.INFO
    assert f"reservation {charge.reservation_id}" in record.getMessage()
    assert "4.5 credits" in record.getMessage() and "secret" not in record.getMessage()
