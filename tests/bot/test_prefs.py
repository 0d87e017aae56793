"""/prefs through the fake Discord: a member's defaults on the Gemini wire (model, ratio, size, count,
suffix), options that override them, /prefs show and reset, and private results: ephemeral, with
working buttons, nothing posted in public, and a late one sent by DM."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.billing.rules import user_subject
from tests.botenv import (
    GeminiBot,
    button_id,
    embed_fields,
    eventually,
    eventually_async,
    gemini_bot,
    linked_turn,
    running_bot,
    settled_usage,
    text,
    wait_result,
)
from tests.fakes.discord import FakeDiscord, InteractionHandle
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini

KEY = "prefs-key"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
NB2 = "gemini-3.1-flash-image-preview"
EPHEMERAL = 64


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[GeminiBot]:
    async with gemini_bot(tmp_path, KEY, prompt="a lighthouse") as found:
        yield found


def model_of(env: GeminiBot, n: int = -1) -> str:
    """The model in the path of the n-th generate call."""
    calls = [r for r in env.gemini.requests if r.method == "POST"]
    return calls[n].path.rsplit("/", 1)[1].split(":")[0]


def prompt_of(body: dict[str, Any]) -> str:
    """The text the member's turn carried."""
    return " ".join(p["text"] for p in body["contents"][-1]["parts"] if "text" in p)


def image_config(body: dict[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = body["generationConfig"].get("imageConfig", {})
    return config


def public_bot_messages(fake: FakeDiscord) -> list[dict[str, Any]]:
    """Everything the bot posted where others can see it (ephemeral messages are not in channels)."""
    return [m for ms in fake.messages.values() for m in ms if m["author"]["id"] == fake.app_id]


async def imagine(env: GeminiBot, **options: Any) -> tuple[InteractionHandle, dict[str, Any]]:
    """/imagine and its final answer (the result, or the error)."""
    inter = await env.discord.send_slash("imagine", {"prompt": env.prompt, **options})
    return inter, await wait_result(inter)


async def test_prefs_change_the_next_jobs_request_on_the_wire(env: GeminiBot) -> None:
    saved = await env.command(
        "prefs set",
        {
            "model": NB2,
            "aspect_ratio": "16:9",
            "resolution": "2K",
            "count": 2,
            "prompt_suffix": "oil painting",
        },
    )
    assert saved["flags"] & EPHEMERAL
    assert embed_fields(saved)["Aspect ratio"] == "16:9"
    _, message = await imagine(env)
    assert len(env.discord.files_of(message)) == 2
    bodies = env.posts()
    assert len(bodies) == 2  # count 2: two generate calls
    assert {model_of(env, 0), model_of(env, 1)} == {NB2}
    for body in bodies:
        assert image_config(body) == {"aspectRatio": "16:9", "imageSize": "2K"}
        assert prompt_of(body) == "a lighthouse, oil painting"
    turn = await linked_turn(env.bot, message)
    assert turn.prompt == "a lighthouse, oil painting" and turn.model == NB2


async def test_options_given_override_the_prefs(env: GeminiBot) -> None:
    await env.command("prefs set", {"model": NB2, "aspect_ratio": "16:9", "resolution": "2K", "count": 3})
    _, message = await imagine(env, model=PRO, aspect_ratio="1:1", resolution="1K", count=1)
    assert len(env.discord.files_of(message)) == 1
    assert len(env.posts()) == 1
    assert model_of(env) == PRO
    assert image_config(env.sent()) == {"aspectRatio": "1:1", "imageSize": "1K"}
    assert prompt_of(env.sent()) == "a lighthouse"


async def test_a_pref_the_model_cannot_take_is_left_out_at_job_time(env: GeminiBot) -> None:
    saved = await env.command(
        "prefs set", {"model": NB2, "aspect_ratio": "1:4", "resolution": "0.5K", "count": 2}
    )
    assert embed_fields(saved)["Resolution"] == "0.5K"
    _, message = await imagine(env, model=FLASH)  # 2.5 Flash: no 1:4, 1K only
    assert env.discord.files_of(message)
    assert model_of(env) == FLASH
    assert image_config(env.sent()) == {"aspectRatio": "1:1"}
    assert len(env.posts()) == 2  # the count still applies: 2.5 Flash makes up to 4


async def test_prefs_set_refuses_what_the_model_cannot_make(env: GeminiBot) -> None:
    refused = await env.command("prefs set", {"model": PRO, "aspect_ratio": "1:4"})
    assert refused["flags"] & EPHEMERAL
    assert f"{PRO} cannot make 1:4 images" in text(refused)
    refused = await env.command("prefs set", {"model": FLASH, "resolution": "4K"})
    assert f"{FLASH} does not offer 4K" in text(refused)
    refused = await env.command("prefs set", {"model": "no-such-model"})
    assert "no-such-model is not a model this bot offers" in text(refused)
    shown = await env.command("prefs show", {})
    assert embed_fields(shown)["Model"] == "the server's default"  # nothing was saved
    await env.command("prefs set", {"model": NB2, "aspect_ratio": "1:4"})
    refused = await env.command("prefs set", {"model": PRO})  # the saved ratio must still fit
    assert f"{PRO} cannot make 1:4 images" in text(refused)


async def test_prefs_show_lists_them_and_reset_clears_them(env: GeminiBot) -> None:
    await env.command("prefs set", {"aspect_ratio": "3:2", "count": 2, "prompt_suffix": "in watercolour"})
    shown = await env.command("prefs show", {})
    assert shown["flags"] & EPHEMERAL
    fields = embed_fields(shown)
    assert fields["Aspect ratio"] == "3:2"
    assert fields["Count"] == "2"
    assert fields["Prompt suffix"] == ", in watercolour"
    assert fields["Private results"] == "off"
    assert not public_bot_messages(env.discord)
    cleared = await env.command("prefs reset", {})
    assert "Your preferences are cleared." in text(cleared)
    fields = embed_fields(await env.command("prefs show", {}))
    assert fields["Aspect ratio"].startswith("1:1") and fields["Count"] == "1"
    assert fields["Prompt suffix"] == "none"
    await imagine(env)
    assert len(env.posts()) == 1
    assert image_config(env.sent()) == {"aspectRatio": "1:1"}
    assert prompt_of(env.sent()) == "a lighthouse"
    again = await env.command("prefs reset", {})
    assert "You had no preferences set." in text(again)


async def test_one_pref_is_cleared_with_none(env: GeminiBot) -> None:
    await env.command("prefs set", {"aspect_ratio": "3:2", "prompt_suffix": "at night"})
    fields = embed_fields(await env.command("prefs set", {"prompt_suffix": "none"}))
    assert fields["Prompt suffix"] == "none" and fields["Aspect ratio"] == "3:2"


async def test_edit_takes_model_size_and_suffix_but_keeps_its_inputs_shape(env: GeminiBot) -> None:
    await env.command(
        "prefs set", {"model": PRO, "aspect_ratio": "16:9", "resolution": "2K", "prompt_suffix": "film grain"}
    )
    source = env.discord.upload_attachment(
        make_image(900, 600, "PNG", color=(200, 0, 0)), "p.png", "image/png"
    )
    inter = await env.discord.send_slash("edit", {"prompt": "make it blue", "image": source})
    assert env.discord.files_of(await wait_result(inter))
    assert model_of(env) == PRO
    assert image_config(env.sent()) == {"aspectRatio": "3:2", "imageSize": "2K"}
    assert prompt_of(env.sent()) == "make it blue, film grain"


async def test_private_results_are_ephemeral_with_working_buttons(env: GeminiBot) -> None:
    await env.command("prefs set", {"private": True})
    inter, message = await imagine(env)
    assert inter.ephemeral and message["flags"] & EPHEMERAL
    assert env.discord.files_of(message)
    reroll = await env.discord.send_component(message, button_id(message, "reroll"))
    again = await wait_result(reroll)
    assert reroll.ephemeral and again["flags"] & EPHEMERAL
    assert env.discord.files_of(again) and again["id"] != message["id"]
    assert len(env.posts()) == 2
    assert prompt_of(env.posts()[1]) == "a lighthouse"
    assert (await linked_turn(env.bot, again)).kind == "reroll"
    assert not public_bot_messages(env.discord)  # not the result, the reroll, nor a progress message
    used, reserved = await settled_usage(env.discord, env.bot)
    assert used > 0 and reserved == 0  # delivered privately is delivered: charged


async def test_the_edit_button_on_a_private_result_answers_privately(env: GeminiBot) -> None:
    await env.command("prefs set", {"private": True, "model": PRO})
    _, message = await imagine(env)
    opened = await env.discord.send_component(message, button_id(message, "edit"))
    await opened.wait_ack()
    assert opened.modal is not None
    field = opened.modal["components"][0]["components"][0]["custom_id"]
    submit = await env.discord.send_modal_submit(opened.modal["custom_id"], {field: "add a scarf"}, message)
    edited = await wait_result(submit)
    assert submit.ephemeral and edited["flags"] & EPHEMERAL
    assert env.discord.files_of(edited)
    assert not public_bot_messages(env.discord)


async def test_a_private_jobs_error_replaces_its_thinking_message(env: GeminiBot) -> None:
    await env.command("prefs set", {"private": True})
    env.gemini.script("reset", "reset", "reset", "reset", "reset", "reset")
    inter, message = await imagine(env)
    assert message["id"] == inter.original_id and message["flags"] & EPHEMERAL
    assert "unavailable" in text(message).lower()
    assert not message.get("components") and not env.discord.files_of(message)
    assert not public_bot_messages(env.discord)


async def test_others_and_public_members_are_unaffected(env: GeminiBot) -> None:
    env.discord.add_user("bob")
    await env.command("prefs set", {"private": True, "prompt_suffix": "in pencil"})
    bob = await env.discord.send_slash("imagine", {"prompt": "a boat"}, user="bob")
    shown = await wait_result(bob)
    assert not bob.ephemeral and not shown["flags"] & EPHEMERAL
    assert prompt_of(env.sent()) == "a boat"
    assert [m["id"] for m in public_bot_messages(env.discord)] == [shown["id"]]


async def test_a_late_private_result_comes_by_dm_never_in_public(tmp_path: Path) -> None:
    async with FakeDiscord(token_lifetime=1.0) as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, interaction_token_lifetime=1.0):
            await (await fake.send_slash("prefs set", {"private": True})).wait_done()
            released = gemini.hold_next()
            inter = await fake.send_slash("imagine", {"prompt": "a slow cathedral"})
            await inter.wait_ack()
            assert inter.ephemeral
            await eventually(lambda: inter.expired(1.0), what="the token's end")
            released.set()
            dm = fake.dm_channel("alice")
            posted = await fake.wait_for_message(lambda m: bool(m.get("attachments")), timeout=60)
            assert posted["channel_id"] == dm
            assert "🔒 Your private result (job " in posted["content"]
            assert fake.files_of(posted)[0][1] == gemini.outputs[-1]
            assert button_id(posted, "reroll")
            assert not [m for m in public_bot_messages(fake) if m["channel_id"] != dm]
        assert fake.violations == []


async def test_a_late_private_result_is_kept_when_dms_are_closed(tmp_path: Path) -> None:
    async with FakeDiscord(token_lifetime=1.0) as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, interaction_token_lifetime=1.0) as bot:
            await (await fake.send_slash("prefs set", {"private": True})).wait_done()
            dm = fake.dm_channel("alice")
            fake.fail_next("POST", rf"/channels/{dm}/messages", 403, code=50007, message="Cannot send")
            released = gemini.hold_next()
            inter = await fake.send_slash("imagine", {"prompt": "a slow cathedral"})
            await inter.wait_ack()
            await eventually(lambda: inter.expired(1.0), what="the token's end")
            released.set()
            guild, alice = int(fake.guild_id), user_subject(int(fake.users["alice"]["id"]))

            async def charged() -> bool:
                found = await bot.quotas.usage(guild, alice, "day")
                return found.used_cents > 0 and found.reserved_cents == 0

            await eventually_async(charged, what="the kept result charged")
            turn = await bot.service.turns.get(1)
            assert turn is not None and turn.status == "done"  # kept: /show can bring it back
            assert turn.prompt == "a slow cathedral"
            assert not public_bot_messages(fake)
            assert not fake.messages.get(dm)
        assert fake.violations == []


async def test_a_burst_of_private_jobs_is_all_answered_privately(env: GeminiBot) -> None:
    await env.command("prefs set", {"private": True})
    inters = await asyncio.gather(*(env.discord.send_slash("imagine", {"prompt": "x"}) for _ in range(3)))
    for inter in inters:
        assert (await wait_result(inter))["flags"] & EPHEMERAL
        assert inter.ephemeral and inter.ack_latency is not None and inter.ack_latency < 3.0
    assert not public_bot_messages(env.discord)


async def test_deleting_a_private_result_removes_its_message_and_marks_it_private(env: GeminiBot) -> None:
    await env.command("prefs set", {"private": True})
    _, message = await imagine(env)
    turn = await linked_turn(env.bot, message)
    assert turn.options.get("private") is True  # /show and /history keep it to its requester
    click = await env.discord.send_component(message, button_id(message, "del"))
    await click.wait_ack()
    await eventually(lambda: message["id"] not in env.discord._by_id, what="the private result removed")
    assert (await env.bot.service.turns.get(turn.id)).status == "deleted"  # type: ignore[union-attr]
