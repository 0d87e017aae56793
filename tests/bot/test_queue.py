"""The queue through the fake Discord: positions, running updates, cancel (queued and running), caps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.app import NanoBot
from bot.billing.rules import user_subject
from tests.botenv import (
    HANG,
    cancel_id,
    eventually,
    eventually_async,
    running_bot,
    wait_for_text,
    wait_result,
)
from tests.fakes.discord import FakeDiscord, InteractionHandle
from tests.fakes.providers import FakeGemini

KEY = "queue-key"


@dataclass
class Env:
    discord: FakeDiscord
    gemini: FakeGemini
    bot: NanoBot

    async def usage(self, user: str) -> tuple[int, int]:
        assert self.bot.quotas is not None
        subject = user_subject(int(self.discord.users[user]["id"]))
        found = await self.bot.quotas.usage(int(self.discord.guild_id), subject, "day")
        return found.used_cents, found.reserved_cents


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[Env]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        for name in ("bob", "erin", "frank"):
            fake.add_user(name)
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(
            fake, tmp_path, entry, max_running_jobs=1, progress_interval=0.3, max_queued_per_user=1
        ) as bot:
            yield Env(fake, gemini, bot)
        assert fake.violations == []


def contents(env: Env, inter: InteractionHandle) -> list[str]:
    """Every text the bot put in this interaction's "thinking…" message, in order."""
    return [
        str(r.json.get("content"))
        for r in env.discord.requests
        if r.method == "PATCH" and inter.token in r.path and r.json and r.json.get("content")
    ]


async def test_positions_move_and_running_shows_elapsed(env: Env) -> None:
    first_call, second_call = env.gemini.hold_next(), env.gemini.hold_next()  # each runs until released
    first = await env.discord.send_slash("imagine", {"prompt": "one"}, user="alice")
    await wait_for_text(first, "Working with")
    second = await env.discord.send_slash("imagine", {"prompt": "two"}, user="bob")
    await wait_for_text(second, "Queued: position 1")
    third = await env.discord.send_slash("imagine", {"prompt": "three"}, user="erin")
    await wait_for_text(third, "Queued: position 2")
    first_call.set()
    await wait_for_text(third, "Queued: position 1")
    second_call.set()
    for inter in (first, second, third):
        assert env.discord.files_of(await wait_result(inter, 30))
    shown = contents(env, third)
    assert shown[0].startswith("⏳ Queued: position 2")  # behind the second job
    assert "about" in shown[0]  # an estimate from recent durations
    later = shown[shown.index(next(t for t in shown if "position 1" in t)) :]
    assert any(t.startswith("🎨 Working with google") for t in later)  # it moved up, then ran with its time


async def test_cancel_while_queued_refunds_and_never_runs(env: Env) -> None:
    first_call = env.gemini.hold_next()  # the first job runs until the second is cancelled
    first = await env.discord.send_slash("imagine", {"prompt": "one"}, user="alice")
    await wait_for_text(first, "Working with")
    second = await env.discord.send_slash("imagine", {"prompt": "two"}, user="bob")
    queued = await wait_for_text(second, "Queued")
    click = await env.discord.send_component(queued, cancel_id(queued), user="bob")
    await click.wait_ack()
    assert "Cancelled" in (second.original or {}).get("content", "")
    first_call.set()
    await wait_result(first)
    assert await env.bot.service.wait_idle(HANG)  # nothing left that could still reach the provider
    assert env.gemini.calls == 1  # the cancelled job never reached the provider
    assert await env.usage("bob") == (0, 0)
    assert not env.discord.files_of(second.original or {})
    queue = env.bot.service.supervisor.queue
    assert (queue.running, queue.depth) == (0, 0)  # the cancelled place took no slot with it
    third = await env.discord.send_slash("imagine", {"prompt": "three"}, user="bob")
    assert env.discord.files_of(await wait_result(third))  # the one slot is free for the next job


async def test_cancel_after_the_provider_started_is_charged(env: Env) -> None:
    """Once the provider has the request it bills us: a cancel stops the delivery, and is charged.

    (It used to refund everything: 10 provider calls, 0 credits charged.)"""
    env.gemini.delay = 30.0  # the provider is still working when the cancel arrives
    inter = await env.discord.send_slash("imagine", {"prompt": "slow"}, user="alice")
    await eventually(lambda: len(env.gemini.requests) == 1, 30, "the provider has the request")
    running = await wait_for_text(inter, "cancelling now stops the result but is charged", 30)
    [button] = [c for row in running["components"] for c in row["components"]]
    assert button["label"] == "Cancel (still charged)"
    stranger = await env.discord.send_component(running, cancel_id(running), user="bob")
    refusal = await stranger.wait_done()
    assert "Not yours" in refusal["embeds"][0]["title"]
    click = await env.discord.send_component(running, cancel_id(running), user="alice")
    await click.wait_ack()
    final = inter.original or {}
    assert "Cancelled" in final.get("content", "") and "this job is charged" in final["content"]
    assert not env.discord.files_of(final)
    assert env.bot.quotas is not None
    quotas = env.bot.quotas

    async def settled() -> bool:
        return (await quotas.audit(int(env.discord.guild_id)))[0].status != "reserved"

    await eventually_async(settled, 30, "the cancelled job settled")
    [row] = await quotas.audit(int(env.discord.guild_id))
    assert row.status == "committed" and "cancelled" in (row.outcome or "")
    assert await env.usage("alice") == (100, 0)
    assert len(env.gemini.requests) == 1
    env.gemini.delay = 0.0
    after = await env.discord.send_slash("imagine", {"prompt": "next"}, user="alice")
    assert env.discord.files_of(await wait_result(after, 30))  # the next command still works


async def test_queue_cap_per_user(env: Env) -> None:
    await env.bot.guild_settings.put(  # type: ignore[union-attr]
        int(env.discord.guild_id),
        (await env.bot.guild_settings.get(int(env.discord.guild_id))).model_copy(  # type: ignore[union-attr]
            update={"max_concurrent": 5}
        ),
    )
    first_call = env.gemini.hold_next()  # the first job runs until the third is refused
    first = await env.discord.send_slash("imagine", {"prompt": "a"}, user="alice")
    await wait_for_text(first, "Working with")
    second = await env.discord.send_slash("imagine", {"prompt": "b"}, user="alice")
    await wait_for_text(second, "Queued")
    third = await env.discord.send_slash("imagine", {"prompt": "c"}, user="alice")
    refused = await wait_result(third)
    assert "Queue full" in refused["embeds"][0]["title"]
    first_call.set()
    for inter in (first, second):
        assert env.discord.files_of(await wait_result(inter, 30))
