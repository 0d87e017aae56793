"""🔀 Vary (subtle) and 🌀 Vary (strong) through the fake Discord and the fake Gemini: what each asks
of the model, what the member sees, what it costs, and the old 🔀 Vary button on earlier results."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.botenv import running_bot, settled_usage, wait_result
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

KEY = "variations-key"
SUBTLE = (
    "Make a subtle variation of this image: keep the composition, subject and colours, change small details."
)
NEW_BUTTONS = {"reroll", "vsub", "vstr", "up2", "up4", "edit", "del"}


@dataclass
class World:
    discord: FakeDiscord
    gemini: FakeGemini
    data_dir: Path

    def entry(self, name: str = "google", **extra: Any) -> dict[str, Any]:
        return {"name": name, "kind": "gemini", "base_url": self.gemini.base_url, "api_key": KEY, **extra}

    def bot(self, *entries: dict[str, Any], **overrides: Any) -> Any:
        return running_bot(self.discord, self.data_dir, *(entries or (self.entry(),)), **overrides)

    async def imagine(self, prompt: str = "a cat") -> dict[str, Any]:
        return await wait_result(await self.discord.send_slash("imagine", {"prompt": prompt}))

    async def click(self, message: dict[str, Any], action: str) -> dict[str, Any]:
        """Alice clicks one of a result's buttons; what she is answered."""
        return await wait_result(await self.discord.send_component(message, buttons(message)[action]))

    def sent(self) -> tuple[str, list[bytes]]:
        """The text and the images of the last request's newest user turn."""
        parts = self.gemini.requests[-1].json["contents"][-1]["parts"]
        texts = [p["text"] for p in parts if "text" in p]
        images = [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]
        return "\n".join(texts), images


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        yield World(fake, gemini, tmp_path)
        assert fake.violations == []


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """action → custom_id of the buttons on a message."""
    ids = [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]
    return {cid.split(":")[1]: cid for cid in ids}


def title(message: dict[str, Any]) -> str:
    """The result's (or the refusal's) embed title."""
    return str(message["embeds"][0]["title"])


def model_field(message: dict[str, Any]) -> str:
    """The "Model" field of a result: `model (provider)`."""
    return next(f["value"] for f in message["embeds"][0]["fields"] if f["name"] == "Model")


def as_posted_before(world: World, message: dict[str, Any]) -> None:
    """Give a result the buttons results had before the two variations: one 🔀 Vary (`nb:vary:`)."""
    turn = buttons(message)["del"].split(":")[2]
    layout = [["reroll", "vary", "up2", "up4"], ["edit", "del"]]
    rows = [{"type": 1, "components": [button(a, turn) for a in row]} for row in layout]
    [stored] = [m for m in world.discord.messages[message["channel_id"]] if m["id"] == message["id"]]
    stored["components"] = rows


def button(action: str, turn: str) -> dict[str, Any]:
    """A button component as Discord keeps it."""
    return {"type": 2, "style": 2, "label": action, "custom_id": f"nb:{action}:{turn}"}


async def test_results_offer_both_variations_within_discords_limits(world: World) -> None:
    async with world.bot():
        message = await world.imagine()
        assert set(buttons(message)) == NEW_BUTTONS
        labels = {
            c["custom_id"].split(":")[1]: c["label"]
            for row in message["components"]
            for c in row["components"]
        }
        assert (labels["vsub"], labels["vstr"]) == ("Vary (subtle)", "Vary (strong)")
        assert all(len(row["components"]) <= 5 for row in message["components"])
        assert all(len(cid) <= 100 for cid in buttons(message).values())


async def test_subtle_variation_edits_the_result_keeping_its_composition(world: World) -> None:
    async with world.bot():
        first = await world.imagine()
        varied = await world.click(first, "vsub")
        assert title(varied) == "🔀 Subtle variation"
        assert world.sent() == (f"{SUBTLE}\nOriginal prompt: a cat", [world.gemini.outputs[0]])
        assert world.discord.files_of(varied)[0][1] == world.gemini.outputs[1]
        assert set(buttons(varied)) == NEW_BUTTONS and buttons(varied)["vsub"] != buttons(first)["vsub"]
        # Varied again, the prompt is the member's, not the first variation's instruction twice.
        again = await world.click(varied, "vsub")
        assert title(again) == "🔀 Subtle variation"
        assert world.sent() == (f"{SUBTLE}\nOriginal prompt: a cat", [world.gemini.outputs[1]])


async def test_strong_variation_reruns_the_prompt_with_the_result_as_reference(world: World) -> None:
    async with world.bot():
        first = await world.imagine("a lighthouse at dusk")
        varied = await world.click(first, "vstr")
        assert title(varied) == "🌀 Strong variation"
        text, images = world.sent()
        assert text.startswith("a lighthouse at dusk\n\n") and "reference" in text and SUBTLE not in text
        assert images == [world.gemini.outputs[0]]
        assert world.discord.files_of(varied)[0][1] == world.gemini.outputs[1]
        assert set(buttons(varied)) == NEW_BUTTONS and buttons(varied)["vstr"] != buttons(first)["vstr"]
        again = await world.click(varied, "vstr")
        assert world.sent()[0] == text and world.sent()[1] == [world.gemini.outputs[1]]
        assert title(again) == "🌀 Strong variation"


async def test_an_old_vary_button_makes_a_subtle_variation(world: World) -> None:
    async with world.bot():
        first = await world.imagine()
    as_posted_before(world, first)
    async with world.bot():  # a click after an upgrade and restart
        varied = await world.click(first, "vary")
        assert title(varied) == "🔀 Subtle variation"
        assert world.sent() == (f"{SUBTLE}\nOriginal prompt: a cat", [world.gemini.outputs[0]])
        assert set(buttons(varied)) == NEW_BUTTONS


async def test_each_variation_is_charged_once_like_vary(world: World) -> None:
    async with world.bot() as bot:
        first = await world.imagine()
        costs = bot.settings.costs
        vary = costs.generation(None, "1K", 1, references=1)  # one image, one reference
        used, _ = await settled_usage(world.discord, bot)
        for action in ("vsub", "vstr", "vary"):
            if action == "vary":
                as_posted_before(world, first)
            calls = world.gemini.calls
            assert world.discord.files_of(await world.click(first, action))
            assert world.gemini.calls == calls + 1
            assert await settled_usage(world.discord, bot) == (used + vary, 0)
            used += vary


async def test_variations_refused_by_the_quota_reach_no_model(world: World) -> None:
    async with world.bot():
        await world.discord.send_slash("quota set", {"scope": "default", "limit": "1"}, user="admin")
        first = await world.imagine()
        for action in ("vsub", "vstr"):
            assert "Quota reached" in title(await world.click(first, action))
        assert world.gemini.calls == 1


async def test_a_variation_runs_on_a_model_that_takes_an_image(world: World) -> None:
    """A result made by a model that takes no input image is varied by the first one that does."""
    async with world.bot(world.entry("textonly", max_input_images=0), world.entry()):
        first = await world.imagine()
        assert model_field(first).endswith("(textonly)")
        for action in ("vsub", "vstr"):
            varied = await world.click(first, action)
            assert model_field(varied).endswith("(google)"), varied["embeds"][0]
            assert world.sent()[1] == [world.gemini.outputs[0]]


async def test_a_style_saved_from_a_variation_keeps_the_members_words(world: World) -> None:
    async with world.bot():
        varied = await world.click(await world.imagine("a linocut fox"), "vsub")
        code = next(f["value"] for f in varied["embeds"][0]["fields"] if f["name"] == "Job").strip("`")
        saved = await (
            await world.discord.send_slash("style save", {"name": "lino", "job": code})
        ).wait_done()
        assert "lino" in str(saved)
        listed = await (await world.discord.send_slash("style list", {})).wait_done()
    shown = str(listed["embeds"])
    assert "a linocut fox" in shown and "variation" not in shown.lower()  # the words, not the instruction
