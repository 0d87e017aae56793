"""References up to the model's limit: attachments, message links, image URLs and the upload form."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.botenv import GeminiBot, button_id, embed_fields, eventually, running_bot, text, wait_result
from tests.fakes.discord import FakeDiscord
from tests.fakes.discord.interactions import InteractionHandle
from tests.fakes.imagegen import make_image
from tests.fakes.providers.gemini import FakeGemini

KEY = "refs-key"
FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
VIEW_CHANNEL = 1 << 10


def picture(n: int) -> bytes:
    """A small PNG of its own colour (each reference is told apart by its bytes)."""
    return make_image(64 + n, 48, "PNG", color=(n * 17 % 256, 90, 200 - n * 9))


def link(fake: FakeDiscord, message: dict[str, Any]) -> str:
    """The Discord link to a message, as the client copies it."""
    return f"https://discord.com/channels/{fake.guild_id}/{message['channel_id']}/{message['id']}"


def sent_images(gemini: FakeGemini) -> list[bytes]:
    """The images of the last user turn the fake Gemini received, in order."""
    body = gemini.requests[-1].json
    parts = body["contents"][-1]["parts"]
    return [base64.b64decode(p["inlineData"]["data"]) for p in parts if "inlineData" in p]


def cdn_fetches(fake: FakeDiscord) -> int:
    """Attachment downloads the fake CDN served."""
    return sum(1 for r in fake.requests if r.path.startswith("/cdn/"))


def form_id(inter: InteractionHandle) -> str:
    """The custom id of the form an interaction opened."""
    assert inter.modal is not None, "no form opened"
    return str(inter.modal["custom_id"])


def upload_field(inter: InteractionHandle) -> str:
    """The custom id of the file-upload field of the form an interaction opened."""
    assert inter.modal is not None, "no form opened"
    for row in inter.modal["components"]:
        inner = row.get("component") or {}
        if inner.get("type") == 19:
            return str(inner["custom_id"])
    raise AssertionError(f"no file upload in {inter.modal}")


async def private_channel(env: GeminiBot) -> str:
    """A new channel @everyone may not view (the bot learns of it before this returns)."""
    fake = env.discord
    channel_id = fake._add_text_channel("staff", nsfw=False)
    channel = fake.channels[channel_id]
    channel["permission_overwrites"] = [
        {"id": fake.guild_id, "type": 0, "allow": "0", "deny": str(VIEW_CHANNEL)}
    ]
    await fake.gateway.dispatch("CHANNEL_CREATE", channel, guild_id=fake.guild_id)
    await eventually(lambda: env.bot.get_channel(int(channel_id)) is not None, what="the channel known")
    return channel_id


@pytest.fixture
async def env(tmp_path: Path) -> AsyncIterator[GeminiBot]:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        # The fakes live on 127.0.0.1: image URLs may name it here, as an operator's LAN host would.
        async with running_bot(fake, tmp_path, entry, image_url_hosts=["127.0.0.1"]) as bot:
            yield GeminiBot(fake, gemini, bot, "a collage")
        assert fake.violations == []


async def test_fourteen_references_from_attachments_links_urls_and_the_form_reach_one_request(
    env: GeminiBot,
) -> None:
    images = [picture(n) for n in range(14)]
    posted = await env.discord.user_message("look", attachments=[("a.png", images[3]), ("b.png", images[4])])
    url = env.discord.upload_attachment(images[5], "web.png")["url"]
    options = {
        "prompt": "a collage",
        "model": PRO,
        "image": ("one.png", images[0]),
        "image2": ("two.png", images[1]),
        "image3": ("three.png", images[2]),
        "references": f"{link(env.discord, posted)} <{url}>",
        "upload": True,
    }
    opened = await env.discord.send_slash("imagine", options)
    await opened.wait_ack()
    files = [(f"f{n}.png", images[n]) for n in range(6, 14)]
    submit = await env.discord.send_modal_submit(form_id(opened), {upload_field(opened): files})
    result = await wait_result(submit)
    assert env.discord.files_of(result), text(result)
    # One request with every reference: the command's, the form's, then the entries' in their order.
    assert sent_images(env.gemini) == images[:3] + images[6:] + images[3:6]
    assert len([r for r in env.gemini.requests if r.method == "POST"]) == 1
    assert cdn_fetches(env.discord) == 14  # each downloaded once, once the job was admitted
    assert embed_fields(result)["References"] == "14 images"


async def test_over_the_limit_is_refused_naming_it_before_anything_is_downloaded(env: GeminiBot) -> None:
    posted = await env.discord.user_message(
        "look", attachments=[("a.png", picture(1)), ("b.png", picture(2))]
    )
    before = cdn_fetches(env.discord)
    options = {
        "model": FLASH,
        "image": ("one.png", picture(0)),
        "image2": ("two.png", picture(3)),
        "references": link(env.discord, posted),
    }
    inter = await env.discord.send_slash("imagine", {"prompt": "a collage", **options})
    refused = await wait_result(inter)
    assert "takes at most 3 input images; this job has 4" in text(refused)
    assert cdn_fetches(env.discord) == before  # nothing downloaded
    assert env.gemini.calls == 0


async def test_links_must_lead_to_a_message_with_images_the_member_may_read(env: GeminiBot) -> None:
    fake = env.discord
    elsewhere = f"https://discord.com/channels/{int(fake.guild_id) + 1}/{fake.channel_id}/1"
    words = await fake.user_message("no picture here")
    staff = await private_channel(env)
    hidden = await fake.user_message("secret", attachments=[("s.png", picture(1))], channel_id=staff)
    cases = {
        elsewhere: "must point to a message in this server",
        link(fake, words): "has no image",
        link(fake, hidden): "a channel you cannot read",
        f"https://discord.com/channels/{fake.guild_id}/{fake.channel_id}/123": "does not exist",
    }
    for entry, said in cases.items():
        refused = await wait_result(await fake.send_slash("imagine", {"prompt": "x", "references": entry}))
        assert said in text(refused), text(refused)
    assert env.gemini.calls == 0


async def test_entries_that_are_neither_links_nor_urls_are_refused_at_once(env: GeminiBot) -> None:
    inter = await env.discord.send_slash("imagine", {"prompt": "x", "references": "cat.png"})
    refused = await wait_result(inter)
    assert "`cat.png` is neither a link to a Discord message nor an http(s) image URL" in text(refused)
    assert env.gemini.calls == 0


async def test_image_urls_go_through_the_address_guard(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, entry) as bot:
            env = GeminiBot(fake, gemini, bot)
            url = fake.upload_attachment(picture(1), "web.png")["url"]
            for entry_url, said in {
                url: "is a private or local address",
                "http://10.1.2.3/cat.png": "10.1.2.3 is a private or local address",
            }.items():
                refused = await wait_result(
                    await fake.send_slash("imagine", {"prompt": "x", "references": entry_url})
                )
                assert said in text(refused), text(refused)
            assert env.gemini.calls == 0
        assert fake.violations == []


async def test_the_form_takes_only_images(env: GeminiBot) -> None:
    opened = await env.discord.send_slash("imagine", {"prompt": "x", "upload": True})
    await opened.wait_ack()
    submit = await env.discord.send_modal_submit(
        form_id(opened), {upload_field(opened): [("notes.txt", b"just words")]}
    )
    refused = await wait_result(submit)
    assert "notes.txt is not an image" in text(refused)
    assert env.gemini.calls == 0


async def test_edit_with_references_edits_the_latest_result_with_them(env: GeminiBot) -> None:
    first = await wait_result(await env.discord.send_slash("imagine", {"prompt": "a cat", "model": PRO}))
    [(_, made)] = env.discord.files_of(first)
    posted = await env.discord.user_message("hat", attachments=[("hat.png", picture(7))])
    inter = await env.discord.send_slash(
        "edit", {"prompt": "give it this hat", "model": PRO, "references": link(env.discord, posted)}
    )
    edited = await wait_result(inter)
    assert env.discord.files_of(edited), text(edited)
    sent = sent_images(env.gemini)
    assert sent == [made, picture(7)]  # the result edited, with the linked image as a reference
    assert len(sent) == 2 and embed_fields(edited)["References"] == "2 images"


async def test_the_edit_button_takes_references_with_the_instruction(env: GeminiBot) -> None:
    first = await wait_result(await env.discord.send_slash("imagine", {"prompt": "a cat", "model": PRO}))
    opened = await env.discord.send_component(first, button_id(first, "edit"))
    await opened.wait_ack()
    assert opened.modal is not None
    instruction = opened.modal["components"][0]["components"][0]["custom_id"]
    files = [("hat.png", picture(7)), ("scarf.png", picture(8))]
    submit = await env.discord.send_modal_submit(
        form_id(opened), {instruction: "dress it like these", upload_field(opened): files}
    )
    edited = await wait_result(submit)
    assert env.discord.files_of(edited), text(edited)
    body = env.gemini.requests[-1].json
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]  # the conversation replayed
    assert body["contents"][-1]["parts"][0]["text"] == "dress it like these"
    assert sent_images(env.gemini) == [picture(7), picture(8)]
    assert embed_fields(edited)["References"] == "2 images"


def private_thread(fake: FakeDiscord, owner: str, members: tuple[str, ...] = ()) -> str:
    """A private thread under #general: only its members (and Manage Threads) may read it."""
    thread_id = fake._ids.next()
    fake.channels[thread_id] = {
        "id": thread_id,
        "type": 12,
        "guild_id": fake.guild_id,
        "parent_id": fake.channel_id,
        "owner_id": fake.users[owner]["id"],
        "name": "private plans",
        "last_message_id": None,
        "rate_limit_per_user": 0,
        "message_count": 0,
        "member_count": 1 + len(members),
        "flags": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": "2026-01-01T00:00:00+00:00",
            "locked": False,
            "invitable": False,
        },
        "member_ids": [fake.users[name]["id"] for name in members],  # the fake's thread-members list
    }
    return thread_id


async def test_a_private_thread_is_read_only_by_its_members(env: GeminiBot) -> None:
    fake = env.discord
    secret, shared = picture(5), picture(6)
    closed = private_thread(fake, "admin")  # alice reads #general, but is not in this thread
    posted = await fake.user_message(
        "secret", user="admin", channel_id=closed, attachments=[("s.png", secret)]
    )
    refused = await wait_result(
        await fake.send_slash("imagine", {"prompt": "x", "references": link(fake, posted)})
    )
    assert "a private thread you are not in" in text(refused), text(refused)
    assert env.gemini.calls == 0
    joined = private_thread(fake, "admin", members=("alice",))
    posted = await fake.user_message("ours", user="admin", channel_id=joined, attachments=[("o.png", shared)])
    result = await wait_result(
        await fake.send_slash("imagine", {"prompt": "x", "references": link(fake, posted)})
    )
    assert fake.files_of(result), text(result)
    assert sent_images(env.gemini) == [shared]


async def test_an_age_restricted_channels_images_stay_there(env: GeminiBot) -> None:
    fake = env.discord
    posted = await fake.user_message(
        "n", channel_id=fake.nsfw_channel_id, attachments=[("n.png", picture(9))]
    )
    entry = {"prompt": "x", "references": link(fake, posted)}
    refused = await wait_result(await fake.send_slash("imagine", entry))
    assert "points to an age-restricted channel; use it there" in text(refused), text(refused)
    assert env.gemini.calls == 0
    there = await wait_result(await fake.send_slash("imagine", entry, channel_id=fake.nsfw_channel_id))
    assert fake.files_of(there), text(there)
    assert sent_images(env.gemini) == [picture(9)]


async def test_a_member_the_rules_refuse_costs_no_lookups(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        alice = int(fake.users["alice"]["id"])
        async with running_bot(fake, tmp_path, entry, blocked_users=[alice]):
            posts = [
                await fake.user_message(f"m{n}", user="admin", attachments=[("a.png", picture(n))])
                for n in range(4)
            ]
            before = len(fake.requests)
            links = " ".join(link(fake, p) for p in posts)
            refused = await wait_result(
                await fake.send_slash("imagine", {"prompt": "x", "references": links})
            )
            assert "blocked you" in text(refused), text(refused)
            looked_up = [
                r.path for r in fake.requests[before:] if "/messages/" in r.path and r.method == "GET"
            ]
            assert looked_up == []
        assert fake.violations == []


async def test_a_lookup_that_fails_is_told_privately(env: GeminiBot) -> None:
    fake = env.discord
    posted = await fake.user_message("hat", attachments=[("hat.png", picture(7))])
    opened = await fake.send_slash(
        "imagine", {"prompt": "x", "references": link(fake, posted), "upload": True}
    )
    await opened.wait_ack()
    fake.fail_next("GET", rf"/channels/\d+/messages/{posted['id']}$", 500, count=10)
    submit = await fake.send_modal_submit(form_id(opened), {upload_field(opened): [("a.png", picture(1))]})
    error = await wait_result(submit)
    assert error.get("flags", 0) & 64, f"public: {text(error)!r}"  # ephemeral, never in the channel
    assert env.gemini.calls == 0


async def test_editing_an_upscale_counts_its_image_before_anything_is_downloaded(env: GeminiBot) -> None:
    fake = env.discord  # the default model, 2.5 Flash, takes 3 images
    upscaled = await wait_result(
        await fake.send_slash("upscale", {"image": ("p.png", picture(0)), "factor": 2})
    )
    assert fake.files_of(upscaled), text(upscaled)
    opened = await fake.send_component(upscaled, button_id(upscaled, "edit"))
    await opened.wait_ack()
    assert opened.modal is not None
    instruction = opened.modal["components"][0]["components"][0]["custom_id"]
    files = [(f"r{n}.png", picture(n)) for n in (1, 2, 3)]
    before = cdn_fetches(fake)
    submit = await fake.send_modal_submit(
        form_id(opened), {instruction: "add these", upload_field(opened): files}
    )
    refused = await wait_result(submit)
    assert "takes at most 3 input images; this job has 4" in text(refused), text(refused)
    assert cdn_fetches(fake) == before and env.gemini.calls == 0


async def test_references_over_the_inline_limit_go_through_the_files_api(tmp_path: Path) -> None:
    big = [make_image(600, 600, "PNG", noisy=True) for _ in range(3)]  # ~1.1 MB each, 4.4 MB as base64
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        entry = {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}
        async with running_bot(fake, tmp_path, {**entry, "inline_limit_mb": 2}):
            posted = await fake.user_message(
                "refs", attachments=[(f"b{n}.png", data) for n, data in enumerate(big)]
            )
            options = {"prompt": "a collage", "model": PRO, "references": link(fake, posted)}
            result = await wait_result(await fake.send_slash("imagine", options))
            assert fake.files_of(result), text(result)
            assert embed_fields(result)["References"] == "3 images"
        [sent] = [r for r in gemini.requests if r.path.endswith(":generateContent")]
        assert len(sent.body) <= 2 * 1024 * 1024  # the request fits the provider's inline limit
        uploaded = sorted(u.data for u in gemini.files.uploads)
        inline = sent_images(gemini)
        assert uploaded and sorted([*uploaded, *inline]) == sorted(big)  # every reference, once
        assert fake.violations == []
