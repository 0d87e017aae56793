"""Result buttons through the fake Discord: each effect, after a restart, permissions, quotas."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.botenv import eventually, image_size, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "buttons-key"
PRO = "gemini-3-pro-image-preview"


@dataclass
class World:
    discord: FakeDiscord
    gemini: FakeGemini
    data_dir: Path

    def bot(self, **overrides: Any) -> Any:
        entry = {"name": "google", "kind": "gemini", "base_url": self.gemini.base_url, "api_key": KEY}
        return running_bot(self.discord, self.data_dir, entry, **overrides)

    async def imagine(self, **options: Any) -> dict[str, Any]:
        inter = await self.discord.send_slash("imagine", {"prompt": "a cat", **options})
        return await inter.wait_done()

    async def click(self, message: dict[str, Any], action: str, user: str = "alice") -> Any:
        custom_id = custom_ids(message)[action]
        return await self.discord.send_component(message, custom_id, user=user)


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        yield World(fake, gemini, tmp_path)
        assert fake.violations == []


def custom_ids(message: dict[str, Any]) -> dict[str, str]:
    """action → custom_id of the buttons on a message."""
    ids = [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]
    return {cid.split(":")[1]: cid for cid in ids}


async def test_every_result_has_the_buttons(world: World) -> None:
    async with world.bot():
        message = await world.imagine()
        assert set(custom_ids(message)) == {"reroll", "vsub", "vstr", "up2", "up4", "edit", "del"}
        assert all(len(cid) <= 100 for cid in custom_ids(message).values())


async def test_reroll_same_inputs_new_image(world: World) -> None:
    async with world.bot():
        first = await world.imagine(aspect_ratio="16:9")
        inter = await world.click(first, "reroll")
        second = await inter.wait_done()
        assert world.discord.files_of(second)[0][1] == world.gemini.outputs[1] != world.gemini.outputs[0]
        requests = [r.json for r in world.gemini.requests]
        assert requests[1]["contents"] == requests[0]["contents"]
        assert requests[1]["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}
        assert set(custom_ids(second)) == {"reroll", "vsub", "vstr", "up2", "up4", "edit", "del"}


async def test_both_variations_send_the_image(world: World) -> None:
    async with world.bot():
        first = await world.imagine()
        for action in ("vsub", "vstr"):
            await (await world.click(first, action)).wait_done()
            parts = world.gemini.requests[-1].json["contents"][-1]["parts"]
            assert "variation" in parts[0]["text"] or "reference" in parts[0]["text"]
            assert "a cat" in parts[0]["text"]
            assert base64.b64decode(parts[1]["inlineData"]["data"]) == world.gemini.outputs[0]


@pytest.mark.parametrize(("action", "factor"), [("up2", 2), ("up4", 4)])
async def test_upscale_buttons(world: World, action: str, factor: int) -> None:
    async with world.bot():
        first = await world.imagine(aspect_ratio="3:2")
        width, height = image_size(world.discord.files_of(first)[0][1])
        done = await (await world.click(first, action)).wait_done(timeout=60)
        assert image_size(world.discord.files_of(done)[0][1]) == (width * factor, height * factor)


async def test_edit_button_asks_then_continues_the_conversation(world: World) -> None:
    async with world.bot():
        first = await world.imagine(model=PRO)
        inter = await world.click(first, "edit")
        await inter.wait_ack()
        assert inter.modal is not None
        field = inter.modal["components"][0]["components"][0]["custom_id"]
        submit = await world.discord.send_modal_submit(inter.modal["custom_id"], {field: "add a scarf"})
        assert world.discord.files_of(await submit.wait_done())
        contents = world.gemini.requests[-1].json["contents"]
        assert [c["role"] for c in contents] == ["user", "model", "user"]
        assert contents[1]["parts"][0]["thoughtSignature"] == world.gemini.signatures[0]
        assert contents[2] == {"role": "user", "parts": [{"text": "add a scarf"}]}


async def test_delete_by_owner_stranger_and_moderator(world: World) -> None:
    world.discord.add_user("mallory")
    async with world.bot():
        first = await world.imagine()
        stranger = await world.click(first, "del", user="mallory")
        refusal = await stranger.wait_done()
        assert "Not yours" in refusal["embeds"][0]["title"] and refusal["flags"] & 64
        assert any(m["id"] == first["id"] for m in world.discord.messages[first["channel_id"]])
        owner = await world.click(first, "del")
        await owner.wait_ack()
        await gone(world, first)
        second = await world.imagine()
        moderator = await world.click(second, "del", user="admin")
        await moderator.wait_ack()
        await gone(world, second)


async def gone(world: World, message: dict[str, Any]) -> None:
    """Wait until the message has been deleted in the fake Discord."""
    channel = world.discord.messages[message["channel_id"]]
    await eventually(lambda: all(m["id"] != message["id"] for m in channel), what=f"{message['id']} deleted")


async def test_buttons_work_after_a_restart(world: World) -> None:
    async with world.bot():
        first = await world.imagine(aspect_ratio="4:3")
    async with world.bot():
        done = await (await world.click(first, "reroll")).wait_done()
        [(_, data)] = world.discord.files_of(done)
        width, height = image_size(data)
        assert width / height == pytest.approx(4 / 3, rel=0.03)


async def test_clicks_go_through_quotas(world: World) -> None:
    async with world.bot():
        await world.discord.send_slash("quota set", {"scope": "default", "limit": "1"}, user="admin")
        first = await world.imagine()
        refused = await (await world.click(first, "reroll")).wait_done()
        assert "Quota reached" in refused["embeds"][0]["title"]
        assert world.gemini.calls == 1
