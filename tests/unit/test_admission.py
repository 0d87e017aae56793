"""Admission on a real SQLite database: who may make images where, and what a job reserves or is refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.billing.admission import Admission, Charge, Who
from bot.billing.rules import Rule, window_end
from bot.billing.store import QuotaStore
from bot.errors import Refused
from bot.storage.db import Database
from bot.storage.guilds import GuildConfig, GuildSettingsStore
from tests.fakes.settings import make_settings

G, CHANNEL, U = 4242, 77, 9
SERVER = Who(G, CHANNEL, U)
DM = Who(None, CHANNEL, U)
TIMESTAMP = re.compile(r"<t:(\d+):R>")


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated SQLite database in the test's folder."""
    database = await Database.open(f"sqlite+aiosqlite:///{tmp_path / 'admission.db'}")
    yield database
    await database.close()


@pytest.fixture
def quotas(db: Database) -> QuotaStore:
    """The real quota store."""
    return QuotaStore(db)


@pytest.fixture
def make_admission(db: Database, quotas: QuotaStore) -> Callable[..., Admission]:
    """Admission with the given settings overrides, on the real stores."""

    def build(**overrides: Any) -> Admission:
        return Admission(make_settings(**overrides), quotas, GuildSettingsStore(db), owner="test-process")

    return build


async def admit(
    admission: Admission, who: Who, config: GuildConfig, cost: int, prompt: str = "a cat"
) -> Charge:
    """Admit an imagine job costing `cost` cents: the rules, then the reservation, as the service does."""
    admission.check_rules(who, config, prompt)
    return await admission.admit(
        who, config, cost_cents=cost, kind="imagine", prompt=prompt, provider="google", model="m"
    )


async def refused(
    admission: Admission, who: Who, config: GuildConfig, cost: int, prompt: str = "a cat"
) -> Refused:
    """The refusal of a job that must not be admitted."""
    with pytest.raises(Refused) as caught:
        await admit(admission, who, config, cost, prompt)
    return caught.value


async def held(quotas: QuotaStore, guild_id: int, subject: str) -> tuple[int, int]:
    """(used, reserved) cents on a daily counter."""
    usage = await quotas.usage(guild_id, subject, "day")
    return usage.used_cents, usage.reserved_cents


async def nothing_reserved(quotas: QuotaStore) -> bool:
    """Whether no reservation was written in the server or the DMs."""
    return not await quotas.audit(G) and not await quotas.audit(0)


async def test_a_job_reserves_its_cost_until_commit_or_refund(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    admission = make_admission()
    first = await admit(admission, SERVER, GuildConfig(), 150)
    assert first.reservation_id is not None and first.cost_cents == 150
    assert await held(quotas, G, f"user:{U}") == (0, 150)
    await admission.commit(first)
    assert await held(quotas, G, f"user:{U}") == (150, 0)
    second = await admit(admission, SERVER, GuildConfig(), 100)
    await admission.refund(second, "provider down")
    assert await held(quotas, G, f"user:{U}") == (150, 0)
    [refunded, committed] = await quotas.audit(G)
    assert (refunded.status, refunded.outcome) == ("refunded", "refunded: provider down")
    assert (committed.status, committed.provider, committed.model) == ("committed", "google", "m")


async def test_dms_are_refused_when_not_allowed(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    error = await refused(make_admission(), DM, GuildConfig(), 100)
    assert error.title_text() == "🚧 Not in DMs"
    assert "Nothing was charged" in error.message
    assert await nothing_reserved(quotas)


async def test_dms_spend_the_dm_allowance(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    admission = make_admission(allow_dms=True, dm_credits=2)
    before = datetime.now(UTC)
    charge = await admit(admission, DM, GuildConfig(), 150)
    assert charge.cost_cents == 150
    assert await held(quotas, 0, f"user:{U}") == (0, 150)
    error = await refused(admission, DM, GuildConfig(), 100)
    after = datetime.now(UTC)
    assert error.title_text() == "📉 Quota reached"
    message = TIMESTAMP.sub("<t>", error.message)
    assert (
        message == "This job costs 1 credit but your daily allowance in DMs has 0.5 of 2 left. It resets <t>."
    )
    resets = datetime.fromtimestamp(int(TIMESTAMP.findall(error.message)[0]), UTC)
    assert resets in {window_end("day", before), window_end("day", after)}


async def test_a_server_multiplier_never_applies_in_dms(make_admission: Callable[..., Admission]) -> None:
    admission = make_admission(allow_dms=True)
    charge = await admit(admission, DM, GuildConfig(cost_multiplier=3), 100)
    assert charge.cost_cents == 100


@pytest.mark.parametrize("who", [SERVER, DM])
async def test_blocked_users_are_refused_everywhere(
    make_admission: Callable[..., Admission], quotas: QuotaStore, who: Who
) -> None:
    admission = make_admission(allow_dms=True, blocked_users=[U])
    error = await refused(admission, who, GuildConfig(), 100)
    assert (error.title_text(), error.message) == (
        "⛔ Not allowed",
        "The operator of this bot has blocked you from making images.",
    )
    assert await nothing_reserved(quotas)
    await admit(admission, Who(G, CHANNEL, U + 1), GuildConfig(), 100)  # someone else still may


@pytest.mark.parametrize("who", [SERVER, DM])
async def test_the_operators_blocklist_applies_everywhere(
    make_admission: Callable[..., Admission], quotas: QuotaStore, who: Who
) -> None:
    admission = make_admission(allow_dms=True, blocklist=["forbidden fruit"])
    error = await refused(admission, who, GuildConfig(), 100, prompt="A FORBIDDEN  fruit salad")
    assert (error.title_text(), error.message) == (
        "🚫 Prompt not allowed",
        "Your prompt contains “forbidden fruit”, which this bot does not allow.",
    )
    assert await nothing_reserved(quotas)


async def test_the_servers_rules_apply_in_the_server(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    admission = make_admission()
    config = GuildConfig(blocklist=["cat"], allowed_channels=[CHANNEL + 1])
    place = await refused(admission, SERVER, config, 100, prompt="a dog")
    assert place.title_text() == "🚧 Not in this channel"
    prompt = await refused(admission, Who(G, CHANNEL + 1, U), config, 100, prompt="a cat")
    assert prompt.message == "Your prompt contains “cat”, which this server does not allow."
    assert await nothing_reserved(quotas)


async def test_the_operator_budget_counts_the_unscaled_cost(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    admission = make_admission(operator_daily_budget=3, max_concurrent_jobs=5)
    doubled = GuildConfig(cost_multiplier=2)
    charges = [await admit(admission, SERVER, doubled, 100) for _ in range(3)]
    assert [c.cost_cents for c in charges] == [200, 200, 200]  # the member and the server pay double
    assert await held(quotas, G, f"user:{U}") == (0, 600)
    assert await held(quotas, 0, "operator") == (0, 300)  # the bot's budget pays what the job costs
    error = await refused(admission, SERVER, doubled, 100)
    assert (error.title_text(), TIMESTAMP.sub("<t>", error.message)) == (
        "📉 Quota reached",
        "This job costs 2 credits but the bot's daily budget has 0 of 3 left. It resets <t>.",
    )
    assert await held(quotas, 0, "operator") == (0, 300)


async def test_a_multiplier_rounds_the_scaled_cost_up(make_admission: Callable[..., Admission]) -> None:
    charge = await admit(make_admission(), SERVER, GuildConfig(cost_multiplier=1.5), 1)
    assert charge.cost_cents == 2


async def test_a_server_limit_says_what_is_left(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    await quotas.set_rule(Rule(G, "user", U, 250, False, "day"))
    admission = make_admission()
    await admit(admission, SERVER, GuildConfig(), 200)
    error = await refused(admission, SERVER, GuildConfig(), 100)
    assert TIMESTAMP.sub("<t>", error.message) == (
        "This job costs 1 credit but your daily limit has 0.5 of 2.5 left. It resets <t>."
    )


async def test_the_cooldown_refuses_a_second_job_and_says_when(
    make_admission: Callable[..., Admission],
) -> None:
    admission = make_admission()
    config = GuildConfig(cooldown_seconds=60)
    before = datetime.now(UTC)
    await admit(admission, SERVER, config, 100)
    error = await refused(admission, SERVER, config, 100)
    after = datetime.now(UTC)
    assert error.title_text() == "⏱️ Cooldown"
    match = re.fullmatch(r"Please wait (\d+) s between images; try again <t:(\d+):R>\.", error.message)
    assert match is not None, error.message
    wait, ready = int(match[1]), datetime.fromtimestamp(int(match[2]), UTC)
    assert 1 <= wait <= 60
    assert before + timedelta(seconds=59) <= ready <= after + timedelta(seconds=60)
    await admit(admission, Who(G, CHANNEL, U + 1), config, 100)  # the cooldown is the member's own


async def test_a_member_blocked_by_the_server_is_refused(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    await quotas.set_rule(Rule(G, "role", 31, None, True, "day"))
    admission = make_admission()
    error = await refused(admission, Who(G, CHANNEL, U, role_ids=(31,)), GuildConfig(), 100)
    assert (error.title_text(), error.message) == (
        "⛔ Not allowed",
        "A server admin has blocked you from making images here.",
    )
    assert await nothing_reserved(quotas)
    await admit(admission, SERVER, GuildConfig(), 100)  # without the role, allowed


async def test_jobs_past_the_running_share_and_the_queue_are_refused(
    make_admission: Callable[..., Admission],
) -> None:
    admission = make_admission(max_queued_per_user=1)
    config = GuildConfig(max_concurrent=1)
    assert (admission.jobs_at_once(config), admission.admitted_at_once(config)) == (1, 2)
    running = await admit(admission, SERVER, config, 100)
    await admit(admission, SERVER, config, 100)  # waits in the queue behind the running one
    error = await refused(admission, SERVER, config, 100)
    assert (error.title_text(), error.message) == (
        "⏳ Queue full",
        "You already have 2 jobs running or waiting in the queue; "
        "wait for one to finish, or cancel one (❌ on its message).",
    )
    await admission.commit(running)
    await admit(admission, SERVER, config, 100)  # a finished job frees its place


async def test_a_refusal_reads_in_the_members_language(make_admission: Callable[..., Admission]) -> None:
    admission = make_admission()
    config = GuildConfig(cooldown_seconds=60)
    await admit(admission, SERVER, config, 100)
    error = await refused(admission, SERVER, config, 100)
    assert error.title_text("es-ES") == "⏱️ Tiempo de espera"
    spanish = re.fullmatch(
        r"Espera (\d+) s entre imágenes; vuelve a intentarlo <t:\d+:R>\.", error.reply_text("es-ES")
    )
    assert spanish is not None and 1 <= int(spanish[1]) <= 60, error.reply_text("es-ES")
    assert error.title_text("ja") == "⏱️ クールダウン中"
    japanese = re.fullmatch(
        r"画像の作成には (\d+) 秒の間隔が必要です。<t:\d+:R>にもう一度お試しください。",
        error.reply_text("ja"),
    )
    assert japanese is not None and japanese[1] == spanish[1], error.reply_text("ja")
    assert error.message.startswith("Please wait ")  # the log and the command-line tool stay English


async def test_a_quota_refusal_names_its_counter_in_the_members_language(
    make_admission: Callable[..., Admission], quotas: QuotaStore
) -> None:
    await quotas.set_rule(Rule(G, "user", U, 250, False, "week"))
    admission = make_admission()
    await admit(admission, SERVER, GuildConfig(), 200)
    error = await refused(admission, SERVER, GuildConfig(), 100)
    assert TIMESTAMP.sub("<t>", error.reply_text("es-ES")) == (
        "Este trabajo cuesta 1 crédito, pero en tu límite semanal quedan 0,5 de 2,5. Se restablece <t>."
    )
    assert TIMESTAMP.sub("<t>", error.reply_text("pt-BR")) == (
        "Este trabalho custa 1 crédito, mas seu limite semanal tem 0,5 de 2,5 restantes. "
        "A renovação acontece <t>."
    )
    assert error.title_text("ja") == "📉 上限に達しました"
