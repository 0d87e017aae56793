"""Queue, don't refuse, through the fake Discord: a member's jobs wait their turn in the order sent,
members take turns, and a waiting job is cancelled for free."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import NanoBot
from tests.botenv import HANG, cancel_id, eventually, running_bot, settled_usage, wait_for_text, wait_result
from tests.fakes.discord import FakeDiscord, InteractionHandle
from tests.fakes.providers import FakeGemini, Fault

KEY = "fair-queue-key"


@dataclass
class Env:
    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot

    async def send(self, user: str, prompt: str) -> InteractionHandle:
        """An /imagine of this member, answered (acknowledged) but not yet finished."""
        inter = await self.discord.send_slash("imagine", {"prompt": prompt}, user=user)
        await inter.wait_ack()
        return inter

    def prompts(self) -> list[str]:
        """The prompts the provider received, in the order it received them."""
        return [r.json["contents"][-1]["parts"][0]["text"] for r in self.gemini.requests if r.json]

    async def spent(self, user: str) -> int:
        """Credits (in cents) this member has spent today, once every charge has settled."""
        used, reserved = await settled_usage(self.discord, self.bot, user)
        assert reserved == 0
        return used


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        fake.add_user("bob")
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        # One slot in all, so that who goes next is visible; the queue itself at its defaults.
        async with running_bot(fake, tmp_path, entry, max_running_jobs=1, progress_interval=0.3) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


async def test_a_members_fifth_quick_job_waits_and_all_arrive_in_order(env: Env) -> None:
    release = env.gemini.hold_next()  # the first job holds the one slot until all five are sent
    jobs = [await env.send("alice", f"picture {n}") for n in range(5)]
    fifth = await wait_for_text(jobs[4], "Queued: position 4")
    assert "members take turns" in fifth["content"] and cancel_id(fifth)
    release.set()
    for inter in jobs:
        assert env.discord.files_of(await wait_result(inter, HANG))
    assert env.prompts() == [f"picture {n}" for n in range(5)]  # run in the order sent
    assert await env.spent("alice") == 500


async def test_another_members_first_job_goes_before_a_backlog(env: Env) -> None:
    release = env.gemini.hold_next()
    alice = [await env.send("alice", f"alice {n}") for n in range(5)]
    await wait_for_text(alice[4], "Queued: position 4")
    bob = await env.send("bob", "bob's first")
    await wait_for_text(bob, "Queued: position 1")  # ahead of alice's four waiting jobs
    await wait_for_text(alice[1], "Queued: position 2")
    release.set()
    for inter in [*alice, bob]:
        assert env.discord.files_of(await wait_result(inter, HANG))
    assert env.prompts() == ["alice 0", "bob's first", "alice 1", "alice 2", "alice 3", "alice 4"]


async def test_a_waiting_job_is_cancelled_for_free_and_the_rest_keep_their_order(env: Env) -> None:
    release = env.gemini.hold_next()
    jobs = [await env.send("alice", f"picture {n}") for n in range(4)]
    queued = await wait_for_text(jobs[2], "Queued: position 2")
    click = await env.discord.send_component(queued, cancel_id(queued), user="alice")
    await click.wait_ack()
    assert "Cancelled" in (jobs[2].original or {}).get("content", "")
    await wait_for_text(jobs[3], "Queued: position 2")  # moved up into the freed place
    release.set()
    for n in (0, 1, 3):
        assert env.discord.files_of(await wait_result(jobs[n], HANG))
    assert await env.bot.service.wait_idle(HANG)
    assert env.prompts() == ["picture 0", "picture 1", "picture 3"]  # the cancelled one never ran
    assert not env.discord.files_of(jobs[2].original or {})
    assert await env.spent("alice") == 300  # the cancelled job cost nothing


@pytest.fixture
async def wide(tmp_path: Path) -> AsyncIterator[Env]:
    """A bot with the default slots: a member's two jobs run at once (jobs_at_once 2)."""
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, progress_interval=0.3) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


async def test_a_result_that_finishes_early_waits_for_the_members_earlier_one(wide: Env) -> None:
    env = wide
    slow = env.gemini.hold_next()  # the first job stays at the provider; the second finishes at once
    first = await env.send("alice", "the slow one")
    second = await env.send("alice", "the quick one")
    await eventually(lambda: env.gemini.calls == 2, what="both jobs at the provider (jobs_at_once 2)")
    ready = await wait_for_text(second, "Ready: posted as soon as your earlier images are")
    assert not ready.get("components")  # nothing left to cancel
    assert not env.discord.files_of(second.original or {})  # the quick result waits, not posted
    slow.set()
    for inter in (first, second):
        assert env.discord.files_of(await wait_result(inter, HANG))
    first_at = min(n for n, r in enumerate(env.discord.requests) if first.token in r.path and r.files)
    second_at = min(n for n, r in enumerate(env.discord.requests) if second.token in r.path and r.files)
    assert first_at < second_at  # posted in the order sent


async def test_a_failed_earlier_job_never_holds_up_the_next_result(wide: Env) -> None:
    env = wide
    env.gemini.script(Fault("prompt_blocked"))  # the first job is blocked by safety
    first = await env.send("alice", "a blocked one")
    second = await env.send("alice", "a fine one")
    assert "Blocked" in str((await wait_result(first, HANG))["embeds"][0]["title"])
    assert env.discord.files_of(await wait_result(second, HANG))


async def test_a_job_waiting_for_the_providers_rate_is_cancelled_for_free(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {
            "name": "google",
            "kind": "gemini",
            "base_url": gemini.base_url,
            "api_key": KEY,
            "requests_per_minute": 1,  # the second job waits about a minute for its turn
        }
        async with running_bot(fake, tmp_path, entry, progress_interval=0.3) as bot:
            first = await fake.send_slash("imagine", {"prompt": "one"}, user="alice")
            assert fake.files_of(await wait_result(first, HANG))
            second = await fake.send_slash("imagine", {"prompt": "two"}, user="alice")
            shown = await wait_for_text(second, "Working with")
            assert "charged" not in shown["content"]  # the provider has not got it: cancelling is free
            click = await fake.send_component(shown, cancel_id(shown), user="alice")
            await click.wait_ack()
            assert await bot.service.wait_idle(HANG)
            used, reserved = await settled_usage(fake, bot, "alice")
            assert gemini.calls == 1 and (used, reserved) == (100, 0)
        assert fake.violations == []
