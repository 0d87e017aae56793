"""Conversations: reply to refine (real multi-turn Gemini history), branch, restart, re-fetch, menus."""

from __future__ import annotations

import base64
import contextlib
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.app import NanoBot
from tests.botenv import image_size, linked_turn, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeOpenAIImages
from tests.pg import temp_database

KEY = "conversation-key"
PRO = "gemini-3-pro-image-preview"


@dataclass
class World:
    discord: FakeDiscord
    gemini: FakeGemini
    data_dir: Path
    db_url: str

    def bot(self, **overrides: Any) -> contextlib.AbstractAsyncContextManager[NanoBot]:
        entry = {"name": "google", "kind": "gemini", "base_url": self.gemini.base_url, "api_key": KEY}
        return running_bot(self.discord, self.data_dir, entry, database_url=self.db_url, **overrides)


@pytest.fixture(params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with (
        temp_database(request.param, tmp_path / "conv.db") as url,
        FakeDiscord() as fake,
        FakeGemini(api_key=KEY) as gemini,
    ):
        yield World(fake, gemini, tmp_path, url)
        assert fake.violations == []


def model_turn(gemini: FakeGemini, n: int) -> dict[str, Any]:
    """The model turn the fake answered with in its n-th call, as it must be replayed."""
    data = base64.b64encode(gemini.outputs[n]).decode()
    return {
        "role": "model",
        "parts": [
            {"inlineData": {"mimeType": "image/jpeg", "data": data}, "thoughtSignature": gemini.signatures[n]}
        ],
    }


def user_turn(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


async def imagine(world: World, prompt: str) -> dict[str, Any]:
    inter = await world.discord.send_slash("imagine", {"prompt": prompt, "model": PRO})
    return await inter.wait_done()


async def reply(world: World, to: dict[str, Any], text: str, **kwargs: Any) -> dict[str, Any]:
    """A user replies to a bot message; returns the bot's reply to that."""
    sent = await world.discord.user_message(text, reply_to=to, **kwargs)
    return await world.discord.wait_for_message(
        lambda m: (
            (m.get("message_reference") or {}).get("message_id") == sent["id"]
            and m["author"]["id"] == world.discord.app_id
        ),
        timeout=20,
    )


async def test_five_turns_branch_restart_and_keep_going(world: World) -> None:
    async with world.bot():
        m1 = await imagine(world, "a cat")
        m2 = await reply(world, m1, "make it purple")
        m3 = await reply(world, m2, "add a hat")
        assert world.gemini.requests[-1].json["contents"] == [
            user_turn("a cat"),
            model_turn(world.gemini, 0),
            user_turn("make it purple"),
            model_turn(world.gemini, 1),
            user_turn("add a hat"),
        ]
        [(_, image)] = world.discord.files_of(m3)
        assert image == world.gemini.outputs[2]
        assert m3["embeds"][0]["title"].endswith("Refine")
        # A branch from turn one: "make it night" instead of "make it purple".
        await reply(world, m1, "make it night")
        assert world.gemini.requests[-1].json["contents"] == [
            user_turn("a cat"),
            model_turn(world.gemini, 0),
            user_turn("make it night"),
        ]
    # Restart on the same database: both branches stay usable.
    async with world.bot():
        m4 = await reply(world, m3, "now at sunset")
        m5 = await reply(world, m4, "wider")
        contents = world.gemini.requests[-1].json["contents"]
        assert [c["role"] for c in contents] == ["user", "model"] * 4 + ["user"]
        assert contents[-1] == user_turn("wider")
        assert contents[3] == model_turn(world.gemini, 1)
        assert world.discord.files_of(m5)


async def test_refine_after_blob_deleted_refetches_from_discord(world: World) -> None:
    async with world.bot():
        m1 = await imagine(world, "a dog")
        shutil.rmtree(world.data_dir / "blobs")
        before = len(world.discord.requests)
        await reply(world, m1, "make it smaller")
        fetched = [r for r in world.discord.requests[before:] if r.method == "GET"]
        assert any(r.route == "/channels/{channel_id}/messages/{message_id}" for r in fetched)
        assert any(r.path.startswith("/cdn/") for r in fetched)
        [(_, on_discord)] = world.discord.files_of(m1)
        model = world.gemini.requests[-1].json["contents"][1]["parts"][0]
        assert base64.b64decode(model["inlineData"]["data"]) == on_discord


async def test_reply_with_new_image_sends_it(world: World) -> None:
    async with world.bot():
        m1 = await imagine(world, "a room")
        extra = make_image(64, 48, "PNG", color=(7, 7, 7))
        await reply(world, m1, "add this lamp", attachments=[("lamp.png", extra)])
        last = world.gemini.requests[-1].json["contents"][-1]["parts"]
        assert last[0] == {"text": "add this lamp"}
        assert base64.b64decode(last[1]["inlineData"]["data"]) == extra


@pytest.mark.parametrize("policy", ["anyone", "starter"])
async def test_reply_from_another_user(world: World, policy: str) -> None:
    async with world.bot(continue_policy=policy):
        m1 = await imagine(world, "a tree")
        answer = await reply(world, m1, "make it autumn", user="admin")
        if policy == "anyone":
            assert world.discord.files_of(answer) and world.gemini.calls == 2
        else:
            assert "who started this conversation" in answer["embeds"][0]["description"]
            assert world.gemini.calls == 1


async def test_history_depth_cut_is_said(world: World) -> None:
    async with world.bot(history_depth=2):
        m = await imagine(world, "a boat")
        for step in ("red", "blue", "green"):
            m = await reply(world, m, f"make it {step}")
        assert "left out" in m["embeds"][0]["footer"]["text"]
        roles = [c["role"] for c in world.gemini.requests[-1].json["contents"]]
        assert roles == ["user", "model", "user", "model", "user"]


async def test_replies_to_other_messages_are_ignored(world: World) -> None:
    async with world.bot():
        own = await world.discord.user_message("hello")
        await world.discord.user_message("make it blue", reply_to=own)
        m1 = await imagine(world, "a car")
        calls = world.gemini.calls
        await world.discord.user_message("make it blue", reply_to=own)
        assert world.gemini.calls == calls
        assert m1


async def test_intent_off_needs_a_mention(tmp_path: Path) -> None:
    async with FakeDiscord(privileged_intents=0) as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry, message_content_intent=False):
            inter = await fake.send_slash("imagine", {"prompt": "a hill"})
            m1 = await inter.wait_done()
            await fake.user_message("make it snowy", reply_to=m1)  # invisible without the intent
            await fake.user_message("unrelated", reply_to=None)
            assert gemini.calls == 1
            sent = await fake.user_message("make it snowy", reply_to=m1, mention_bot=True)
            answer = await fake.wait_for_message(
                lambda m: (m.get("message_reference") or {}).get("message_id") == sent["id"], timeout=20
            )
            assert fake.files_of(answer) and gemini.calls == 2
            assert gemini.requests[-1].json["contents"][-1] == user_turn("make it snowy")


async def test_edit_menu_on_a_user_image(world: World) -> None:
    async with world.bot():
        photo = make_image(640, 480, "JPEG", color=(90, 60, 30))
        posted = await world.discord.user_message("my photo", attachments=[("p.jpg", photo)])
        menu = await world.discord.send_message_command("Edit image", posted)
        await menu.wait_ack()
        assert menu.modal is not None
        field = menu.modal["components"][0]["components"][0]["custom_id"]
        submit = await world.discord.send_modal_submit(menu.modal["custom_id"], {field: "make it sepia"})
        message = await submit.wait_done()
        [(_, data)] = world.discord.files_of(message)
        width, height = image_size(data)
        assert width / height == pytest.approx(4 / 3, rel=0.03)
        parts = world.gemini.requests[-1].json["contents"][-1]["parts"]
        assert parts[0] == {"text": "make it sepia"}
        assert base64.b64decode(parts[1]["inlineData"]["data"]) == photo


async def test_edit_menu_on_a_bot_image_continues_the_conversation(world: World) -> None:
    async with world.bot() as bot:
        m1 = await imagine(world, "a castle")
        await linked_turn(bot, m1)  # as a person sees it: the result is known as ours a moment later
        menu = await world.discord.send_message_command("Edit image", m1)
        await menu.wait_ack()
        assert menu.modal is not None
        field = menu.modal["components"][0]["components"][0]["custom_id"]
        submit = await world.discord.send_modal_submit(menu.modal["custom_id"], {field: "add a moat"})
        await submit.wait_done()
        assert world.gemini.requests[-1].json["contents"] == [
            user_turn("a castle"),
            model_turn(world.gemini, 0),
            user_turn("add a moat"),
        ]


async def test_upscale_menu(world: World) -> None:
    async with world.bot():
        photo = make_image(300, 100, "PNG", color=(1, 2, 3))
        posted = await world.discord.user_message("wide", attachments=[("w.png", photo)])
        inter = await world.discord.send_message_command("Upscale image", posted)
        message = await inter.wait_done()
        assert image_size(world.discord.files_of(message)[0][1]) == (600, 200)


async def test_edit_and_upscale_use_the_channels_latest_conversation(world: World) -> None:
    async with world.bot():
        await imagine(world, "a fox")
        first = world.gemini.outputs[-1]
        inter = await world.discord.send_slash("edit", {"prompt": "make it winter"})
        await inter.wait_done()
        parts = world.gemini.requests[-1].json["contents"][-1]["parts"]
        assert base64.b64decode(parts[1]["inlineData"]["data"]) == first
        edited = world.gemini.outputs[-1]
        up = await world.discord.send_slash("upscale", {"factor": 2})
        message = await up.wait_done()
        assert image_size(world.discord.files_of(message)[0][1]) == tuple(2 * v for v in image_size(edited))


async def test_non_gemini_provider_refine_edits_the_replied_image(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeOpenAIImages(api_key="k") as relay:
        entry = {"name": "relay", "kind": "openai-images", "base_url": relay.base_url, "api_key": "k"}
        async with running_bot(fake, tmp_path, entry):
            inter = await fake.send_slash("imagine", {"prompt": "a bridge"})
            m1 = await inter.wait_done()
            sent = await fake.user_message("paint it red", reply_to=m1)
            await fake.wait_for_message(
                lambda m: (m.get("message_reference") or {}).get("message_id") == sent["id"], timeout=20
            )
            edit = [r for r in relay.requests if r.path == "/v1/images/edits"][-1]
            assert edit.form["prompt"] == ["paint it red"]
            assert [f[3] for f in edit.files] == [relay.outputs[0]]
