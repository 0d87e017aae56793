"""Quotas nobody can dodge, through the fake Discord: the operator's budget against a server multiplier,
refusals decided before anything is downloaded, local upscales that cost and are bounded, the cooldown
under concurrency, dearer fallbacks, forged log records, inert embeds, provider-named models, @everyone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from bot.billing.rules import Rule, effective_user_rule
from bot.jobs.recovery import instance_key, new_owner
from tests.botenv import (
    GeminiWorld,
    eventually_async,
    gemini_world,
    image_size,
    settled_usage,
    text,
    title,
    wait_result,
)
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeNBPro, Fault

KEY = "gov-key"
PRO = "gemini-3-pro-image-preview"


class World(GeminiWorld):
    """This file's world: the shared fakes plus the helpers its tests use."""

    async def command(self, name: str, options: dict[str, Any] | None = None, **kw: Any) -> dict[str, Any]:
        inter = await self.discord.send_slash(name, options or {}, **kw)
        return await inter.wait_done()

    async def imagine(self, prompt: str = "a pear", user: str = "alice", **options: Any) -> dict[str, Any]:
        return await self.command("imagine", {"prompt": prompt, **options}, user=user)

    def cdn_reads(self) -> int:
        return sum(1 for r in self.discord.requests if r.method == "GET" and r.path.startswith("/cdn/"))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with gemini_world(World, tmp_path, KEY, ("bob",)) as world:
        yield world


async def settled(bot: NanoBot, guild_id: int) -> None:
    assert bot.quotas is not None
    quotas = bot.quotas

    async def done() -> bool:
        return all(row.status != "reserved" for row in await quotas.audit(guild_id))

    await eventually_async(done, 30, "every job settled")


async def test_a_zero_multiplier_never_empties_the_operator_budget(world: World) -> None:
    """The exploit: /settings set cost_multiplier:0 let 200 of 200 jobs through a 10-credit budget."""
    async with world.bot(operator_daily_budget=3) as bot:
        answer = await world.command("settings set", {"cost_multiplier": 0}, user="admin")
        assert "×0" in str(answer["embeds"][0]["fields"])
        for _ in range(3):
            assert world.discord.files_of(await world.imagine())
        refused = await world.imagine()
        assert "Quota reached" in title(refused) and "the bot's daily budget" in text(refused)
        assert world.gemini.calls == 3
        assert await settled_usage(world.discord, bot) == (0, 0)  # the server's own counters: free
        assert bot.quotas is not None
        operator = await bot.quotas.usage(0, "operator", "day")
        assert (operator.used_cents, operator.reserved_cents) == (300, 0)  # the unscaled cost


async def test_refusals_come_before_any_download(world: World) -> None:
    """The exploit: up to 10 × 25 MB of attachments were downloaded before the quota was checked."""
    async with world.bot() as bot:
        await world.command("quota set", {"scope": "user", "user": "alice", "limit": "blocked"}, user="admin")
        images = [world.discord.upload_attachment(make_image(640, 480), f"r{n}.png") for n in range(3)]
        refused = await world.imagine(image=images[0], image2=images[1], image3=images[2])
        assert "Not allowed" in title(refused)
        await world.command("settings blocklist", {"action": "add", "phrase": "pear"}, user="admin")
        refused = await world.imagine("a pear", user="bob", image=images[0])
        assert "Prompt not allowed" in title(refused)
        alice_result = await world.imagine("an apple", user="bob")  # bob's first image, then…
        reply = await world.discord.user_message(
            "add a lamp", user="alice", reply_to=alice_result, attachments=[("lamp.png", make_image(64, 64))]
        )
        answer = await world.discord.wait_for_message(
            lambda m: (m.get("message_reference") or {}).get("message_id") == reply["id"], timeout=20
        )
        assert "Not allowed" in title(answer)
        assert world.cdn_reads() == 0  # not one attachment was fetched
        assert world.gemini.calls == 1
        assert bot.quotas is not None


async def test_too_many_inputs_are_refused_before_any_download(world: World) -> None:
    async with world.bot(world.entry(max_input_images=1)):
        images = [world.discord.upload_attachment(make_image(64, 64), f"r{n}.png") for n in range(2)]
        refused = await world.imagine(image=images[0], image2=images[1])
        assert "takes at most 1 input image; this job has 2" in text(refused)
        assert world.cdn_reads() == 0 and world.gemini.calls == 0
        assert world.discord.files_of(await world.imagine(image=images[0]))  # one is fine


async def test_local_upscales_cost_credits_and_are_bounded(world: World) -> None:
    """The exploit: local ×4 upscales were free and unbounded (a 36 MB blob, ~720 MiB peak each)."""
    async with world.bot() as bot:
        big = world.discord.upload_attachment(make_image(2400, 2000, "JPEG"), "big.jpg")
        refused = await world.command("upscale", {"image": big, "factor": 4})
        assert "over this bot's 64 MP limit" in text(refused)
        assert "the largest factor that fits is ×2" in text(refused) and "Nothing was charged" in text(
            refused
        )
        assert world.cdn_reads() == 0  # refused from the size Discord declared
        huge = world.discord.upload_attachment(make_image(4200, 4000, "JPEG"), "huge.jpg")
        refused = await world.command("upscale", {"image": huge, "factor": 2})
        assert "too large to upscale at all" in text(refused)
        small = world.discord.upload_attachment(make_image(300, 200), "small.png")
        done = await world.command("upscale", {"image": small, "factor": 4})
        [(_, data)] = world.discord.files_of(done)
        assert image_size(data) == (1200, 800)
        await settled(bot, int(world.discord.guild_id))
        assert await settled_usage(world.discord, bot) == (25, 0)  # local_upscale: 0.25 credits
        fields = {f["name"]: f["value"] for f in done["embeds"][0]["fields"]}
        assert fields["Cost"] == "0.25 credits"


async def test_local_upscales_count_against_jobs_at_once(world: World) -> None:
    async with world.bot() as bot:
        await world.command("quota set", {"scope": "user", "user": "alice", "limit": "0.25"}, user="admin")
        small = world.discord.upload_attachment(make_image(300, 200), "small.png")
        assert world.discord.files_of(await world.command("upscale", {"image": small, "factor": 2}))
        await settled(bot, int(world.discord.guild_id))
        again = await world.command("upscale", {"image": small, "factor": 2})
        assert "Quota reached" in title(again)  # the built-in upscaler is no longer free


@pytest.mark.parametrize("n", [6])
async def test_concurrent_commands_pass_the_cooldown_once(world: World, n: int) -> None:
    """The exploit: N commands at once from one member all passed the cooldown check."""
    async with world.bot():
        await world.command("settings set", {"cooldown": 600}, user="admin")
        inters = await asyncio.gather(
            *(world.discord.send_slash("imagine", {"prompt": f"pear {i}"}) for i in range(n))
        )
        answers = await asyncio.gather(*(wait_result(i, 60) for i in inters))  # past any progress
        delivered = [a for a in answers if world.discord.files_of(a)]
        cooling = [a for a in answers if "Cooldown" in title(a)]
        assert len(delivered) == 1 and len(cooling) == n - 1
        assert world.gemini.calls == 1
        assert world.discord.files_of(await world.imagine(user="bob"))  # others are not held back


async def test_a_failed_job_still_starts_the_cooldown(world: World) -> None:
    async with world.bot():
        await world.command("settings set", {"cooldown": 600}, user="admin")
        world.gemini.script(Fault("unavailable"), Fault("unavailable"), Fault("unavailable"))
        failed = await world.imagine()
        assert "unavailable" in title(failed).lower()
        assert "Cooldown" in title(await world.imagine())  # refunded, but the pace still holds


async def test_a_dearer_fallback_is_never_given_away(world: World, tmp_path: Path) -> None:
    """When the priced provider is down, a fallback that costs more than was reserved is skipped."""
    async with FakeGemini(api_key=KEY) as dear:
        cheap = world.entry(models=["gemini-2.5-flash-image"])
        pro = {"name": "pro", "kind": "gemini", "base_url": dear.base_url, "api_key": KEY, "models": [PRO]}
        async with world.bot(cheap, pro) as bot:
            world.gemini.script(Fault("unavailable"), Fault("unavailable"), Fault("unavailable"))
            answer = await world.imagine()
            assert not world.discord.files_of(answer)
            assert dear.calls == 0  # 3.5 credits of work for a 1-credit reservation: not done
            await settled(bot, int(world.discord.guild_id))
            assert await settled_usage(world.discord, bot) == (0, 0)
            assert world.discord.files_of(await world.imagine())  # back up: the next command works


async def test_the_job_log_line_cannot_be_forged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    forged = (
        "x\njob done id=1 kind=imagine guild=1 user=1 provider=google model=m duration=1 outcome=ok cost=0"
    )
    async with world.bot():
        with caplog.at_level(logging.INFO, logger="bot.jobs.service"):
            inter = await world.discord.send_slash("imagine", {"prompt": "a", "model": forged}, force=True)
            await inter.wait_done()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("job done")]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert 'model="x\\njob done id=1' in lines[0]  # quoted and escaped: one record, one job


async def test_prompts_and_model_text_are_shown_inert(world: World) -> None:
    prompt = "**loud** [free nitro](https://evil.example/x) <@&123> see https://evil.example/y __more__"
    async with world.bot():
        answer = await world.imagine(prompt)  # the fake model's text repeats the prompt
        embed = answer["embeds"][0]
        assert "https://evil.example" not in embed["description"]
        assert "\\*\\*loud\\*\\*" in embed["description"] and "\\[free nitro]" in embed["description"]
        assert "<@&" not in embed["description"]
        said = next(f["value"] for f in embed["fields"] if f["name"] == "Model says")
        assert "https://evil.example" not in said and "\\_\\_more\\_\\_" in said


async def test_reroll_and_variations_work_when_the_provider_names_its_own_model(world: World) -> None:
    """nano-banana-pro.net answers "nano-banana-2-1k" for a nano-banana-pro request."""
    async with FakeNBPro(api_key=KEY) as nbpro:
        entry = {"name": "nbpro", "kind": "nbpro", "base_url": nbpro.base_url, "api_key": KEY}
        async with world.bot(entry) as bot:
            first = await world.imagine()
            assert world.discord.files_of(first)
            for action in ("reroll", "vsub", "vstr"):
                [custom_id] = [
                    c["custom_id"]
                    for row in first["components"]
                    for c in row["components"]
                    if c["custom_id"].startswith(f"nb:{action}:")
                ]
                inter = await world.discord.send_component(first, custom_id)
                answer = await inter.wait_done()
                assert world.discord.files_of(answer), text(answer)
            assert bot.service.turns is not None


def test_instance_keys_of_long_host_names_stay_distinct() -> None:
    """Kubernetes pods share a long prefix; cutting host names to 20 characters made them one instance."""
    pods = ["nanobot-worker-7d9f8c6b5-abcde", "nanobot-worker-7d9f8c6b5-abcdf"]
    keys = {instance_key([0, 1], host) for host in pods}
    assert len(keys) == 2
    assert all(len(new_owner([0, 1], host)) <= 40 for host in pods)
    assert instance_key([0], "short-host").startswith("short-host.")


def test_a_rule_on_everyone_is_the_default_not_an_override() -> None:
    guild = 42
    everyone = Rule(guild, "role", guild, 1000, False, "day")
    strict = Rule(guild, "role", 7, 100, False, "day")
    assert effective_user_rule([everyone, strict], 1, [guild, 7]) == strict
    assert effective_user_rule([everyone, strict], 1, [guild]) == everyone


async def test_a_rule_on_everyone_does_not_lift_a_stricter_role(world: World) -> None:
    world.discord.add_role("newcomer")
    world.discord.add_user("nora", roles=["newcomer"])
    async with world.bot():
        everyone = world.discord.guild_id  # @everyone's role id is the server's id
        await world.command("quota set", {"scope": "role", "role": everyone, "limit": "10"}, user="admin")
        await world.command("quota set", {"scope": "role", "role": "newcomer", "limit": "1"}, user="admin")
        assert world.discord.files_of(await world.imagine(user="nora"))
        assert "Quota reached" in title(await world.imagine(user="nora"))
        assert world.discord.files_of(await world.imagine(user="bob"))  # @everyone's 10 for the rest
