"""Quotas through the fake Discord: limits, roles, refunds, cooldown, reset, admin-only commands."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from bot.billing.rules import Check
from bot.billing.store import QuotaStore
from bot.storage.db import Database
from tests.botenv import eventually, running_bot, settled_usage, wait_result
from tests.fakes.discord import FakeDiscord, InteractionHandle
from tests.fakes.providers import FakeGemini, Fault

KEY = "quota-key"


@dataclass
class Env:
    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot
    data_dir: Path

    async def command(self, name: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        inter = await self.discord.send_slash(name, options or {}, **kw)
        return await inter.wait_done()

    async def imagine(self, user: str = "alice", prompt: str = "an apple", **options: Any) -> dict[str, Any]:
        return await self.command("imagine", {"prompt": prompt, **options}, user=user)

    async def usage(self, user: str = "alice") -> tuple[float, float]:
        """(used, reserved) credits of a member once settled (the charge is committed after delivery)."""
        used, reserved = await settled_usage(self.discord, self.bot, user)
        return used / 100, reserved / 100


def gemini_entry(fake: FakeGemini) -> dict[str, Any]:
    return {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY}


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        fake.add_role("bronze")
        fake.add_role("gold")
        fake.add_user("carol", roles=["bronze", "gold"])
        fake.add_user("dave", roles=["bronze"])
        async with running_bot(fake, tmp_path, gemini_entry(gemini)) as bot:
            yield Env(fake, gemini, bot, tmp_path)
        assert fake.violations == []


def has_image(env: Env, message: dict[str, Any]) -> bool:
    return bool(env.discord.files_of(message))


def title(message: dict[str, Any]) -> str:
    return str(message["embeds"][0]["title"]) if message.get("embeds") else str(message.get("content"))


async def set_quota(env: Env, **options: Any) -> dict[str, Any]:
    message = await env.command("quota set", options, user="admin")
    assert "✅" in message["content"], message
    return message


async def test_default_limit_then_refusal_with_reset_time(env: Env) -> None:
    await set_quota(env, scope="default", limit="2", window="day")
    assert has_image(env, await env.imagine())
    second = await env.imagine()
    assert has_image(env, second)
    assert {"name": "Cost", "value": "1 credit", "inline": True} in second["embeds"][0]["fields"]
    third = await env.imagine()
    assert not has_image(env, third) and third["flags"] & 64
    assert "Quota reached" in title(third)
    text = third["embeds"][0]["description"]
    assert "0 of 2 left" in text and "<t:" in text  # when it resets, in the user's own time zone
    assert env.gemini.calls == 2  # refused before any provider call
    assert await env.usage() == (2, 0)


async def test_most_generous_role_wins_and_user_override(env: Env) -> None:
    await set_quota(env, scope="default", limit="blocked")
    await set_quota(env, scope="role", role="bronze", limit="1")
    await set_quota(env, scope="role", role="gold", limit="3")
    for _ in range(3):
        assert has_image(env, await env.imagine("carol"))  # bronze (1) and gold (3): gold wins
    assert "Quota reached" in title(await env.imagine("carol"))
    assert has_image(env, await env.imagine("dave"))
    assert "Quota reached" in title(await env.imagine("dave"))
    assert "Not allowed" in title(await env.imagine("alice"))  # default: blocked
    await set_quota(env, scope="user", user="alice", limit="unlimited")
    assert has_image(env, await env.imagine("alice"))


async def test_server_pool_is_shared(env: Env) -> None:
    await set_quota(env, scope="guild", limit="2", window="week")
    assert has_image(env, await env.imagine("alice"))
    assert has_image(env, await env.imagine("dave"))
    refused = await env.imagine("carol")
    assert "server's weekly pool" in refused["embeds"][0]["description"]


@pytest.mark.parametrize(
    ("fault", "times"),
    [
        ("prompt_blocked", 1),
        ("image_safety", 1),
        ("no_image", 1),
        ("text_only", 1),
        ("unavailable", 3),
        (Fault("rate_limited", retry_after=3600), 1),
        ("bad_key", 1),
        ("malformed", 1),
    ],
)
async def test_failed_jobs_are_refunded(env: Env, fault: Any, times: int) -> None:
    await set_quota(env, scope="default", limit="1")
    env.gemini.script(*[fault] * times)
    failed = await env.imagine()
    assert not has_image(env, failed)
    assert await env.usage() == (0, 0)
    assert has_image(env, await env.imagine())  # the refunded credit is usable
    assert await env.usage() == (1, 0)


async def test_cooldown(env: Env) -> None:
    await env.command("settings set", {"cooldown": 60}, user="admin")
    began = time.monotonic()
    assert has_image(env, await env.imagine())
    refused = await env.imagine()
    elapsed = time.monotonic() - began
    assert "Cooldown" in title(refused)
    shown = re.search(r"Please wait (\d+) s", refused["embeds"][0]["description"])
    assert shown is not None, refused["embeds"][0]["description"]
    # What is left of the 60 s: all of it, less the time the first image took (however busy the machine).
    assert 60 - elapsed <= int(shown[1]) <= 60
    assert env.gemini.calls == 1


async def test_jobs_past_the_running_share_wait_and_past_the_queue_are_refused(env: Env) -> None:
    await env.command("settings set", {"jobs_at_once": 1}, user="admin")
    first_call = env.gemini.hold_next()  # the first job runs until the others have been answered
    first = await env.discord.send_slash("imagine", {"prompt": "slow one"})
    await first.wait_ack()
    await eventually(lambda: env.gemini.calls == 1, what="the first job at the provider")
    waiting = [await env.discord.send_slash("imagine", {"prompt": f"next {n}"}) for n in range(10)]
    await eventually(
        lambda: all("Queued" in str((w.original or {}).get("content")) for w in waiting),
        what="the next ten shown as queued",
    )
    assert env.gemini.calls == 1  # jobs_at_once 1: they wait, none runs beside the first
    assert "Queue full" in title(await env.imagine(prompt="one too many"))  # 1 running + 10 waiting
    first_call.set()
    assert has_image(env, await wait_result(first))
    for inter in waiting:
        assert has_image(env, await wait_result(inter))
    prompts = [r.json["contents"][-1]["parts"][0]["text"] for r in env.gemini.requests if r.json]
    assert prompts == ["slow one", *(f"next {n}" for n in range(10))]  # in the order sent
    assert await env.usage() == (11, 0)


async def test_reset_and_clear(env: Env) -> None:
    await set_quota(env, scope="user", user="alice", limit="1")
    assert has_image(env, await env.imagine())
    assert "Quota reached" in title(await env.imagine())
    done = await env.command("quota reset", {"user": "alice"}, user="admin")
    assert "reset" in done["content"]
    assert has_image(env, await env.imagine())
    await env.command("quota clear", {"scope": "user", "user": "alice"}, user="admin")
    assert has_image(env, await env.imagine())  # no rule left: unlimited


async def test_usage_and_show(env: Env) -> None:
    await set_quota(env, scope="default", limit="5")
    await env.imagine()
    assert await env.usage() == (1, 0)
    mine = await env.command("usage")
    fields = {f["name"]: f["value"] for f in mine["embeds"][0]["fields"]}
    assert fields["Used"] == "1 credit"
    assert fields["Limit"] == "5 per day" and fields["Resets"].startswith("<t:")
    assert mine["flags"] & 64
    shown = await env.command("quota show", user="admin")
    assert "Everyone (default): 5 credits per day" in shown["embeds"][0]["description"]
    other = await env.command("usage", {"user": "alice"}, user="admin")
    assert other["embeds"][0]["title"] == "Usage of Alice"


async def test_blocklist_and_channels(env: Env) -> None:
    await env.command("settings blocklist", {"action": "add", "phrase": "Forbidden Thing"}, user="admin")
    refused = await env.imagine(prompt="a forbid\u200bden   THING at night")  # zero-width and spacing tricks
    assert "Prompt not allowed" in title(refused)
    await env.command("settings channel", {"channel": env.discord.channel_id, "allowed": True}, user="admin")
    elsewhere = await env.discord.send_slash(
        "imagine", {"prompt": "x"}, channel_id=env.discord.nsfw_channel_id
    )
    assert "Not in this channel" in title(await elsewhere.wait_done())
    assert env.gemini.calls == 0
    assert has_image(env, await env.imagine())


async def test_audit_lists_jobs_with_outcome(env: Env) -> None:
    await env.imagine(prompt="a lighthouse")
    env.gemini.script("prompt_blocked")
    await env.imagine(prompt="a bad thing", user="dave")
    report = await env.command("audit", {}, user="admin")
    text = report["embeds"][0]["description"]
    assert "a lighthouse" in text and "a bad thing" in text
    assert "refunded: 🚫 Blocked by safety filters" in text
    only = await env.command("audit", {"text": "light"}, user="admin")
    assert "a bad thing" not in only["embeds"][0]["description"]


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("quota set", {"scope": "default", "limit": "100"}),
        ("quota show", {}),
        ("quota reset", {}),
        ("quota clear", {"scope": "default"}),
        ("settings show", {}),
        ("settings set", {"cooldown": 0}),
        ("settings blocklist", {"action": "add", "phrase": "x"}),
        ("audit", {}),
        ("usage", {"user": "admin"}),
    ],
)
async def test_non_admin_is_refused(env: Env, name: str, options: dict[str, Any]) -> None:
    inter: InteractionHandle = await env.discord.send_slash(name, options, user="alice", force=True)
    message = await inter.wait_done()
    assert "Admins only" in title(message) and message["flags"] & 64
    assert env.bot.quotas is not None
    assert await env.bot.quotas.rules(int(env.discord.guild_id)) == []


async def test_stale_reservations_are_refunded_at_start(tmp_path: Path) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'nanobot.db'}"
    db = await Database.open(db_url)
    store = QuotaStore(db)
    old = datetime.now(UTC) - timedelta(hours=3)
    held = await store.reserve(
        guild_id=1,
        user_id=2,
        cost_cents=300,
        checks=[Check(1, "user:2", "day", None, "x")],
        kind="imagine",
        prompt="crashed",
        now=old,
    )
    await db.close()
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        async with running_bot(fake, tmp_path, gemini_entry(gemini)) as bot:
            assert bot.quotas is not None
            [row] = await bot.quotas.audit(1)
            assert row.status == "refunded" and held
