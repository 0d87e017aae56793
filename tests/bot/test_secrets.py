"""No token or API key in any log line, reply, exception text or database row, through a run with failures."""

from __future__ import annotations

import logging
import traceback
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import select

from bot.storage.tables import metadata
from tests.botenv import running_bot, wait_result
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini, FakeOpenAIImages

TOKEN = "tok-SECRET-discord-7f3a"
GEMINI_KEY = "AIza-SECRET-gemini-91c2"
RELAY_KEY = "sk-SECRET-relay-55e0"
SECRETS = (TOKEN, GEMINI_KEY, RELAY_KEY, "SECRET")


def file_texts(root: Path) -> str:
    """Every file the bot wrote (image blobs, the command hash) as text; the database is read as rows."""
    files = [f for f in root.rglob("*") if f.is_file() and ".db" not in f.name]
    assert any("blobs" in f.parts for f in files)
    return "\n".join(f.read_bytes().decode("latin-1") for f in files)


async def test_secrets_never_leak(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with (
        FakeDiscord(token=TOKEN) as fake,
        FakeGemini(api_key=GEMINI_KEY) as gemini,
        FakeOpenAIImages(api_key="sk-the-right-one") as relay,
    ):
        providers = [
            {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": GEMINI_KEY},
            # A wrong key: the relay's error message echoes part of the key it was given.
            {
                "name": "relay",
                "kind": "openai-images",
                "base_url": relay.base_url,
                "api_key": RELAY_KEY,
                "models": ["nano-banana-2"],
            },
        ]
        # request_timeout: far above a local answer on a busy machine, far below a hang.
        async with running_bot(
            fake, tmp_path, *providers, health_port=0, health_host="127.0.0.1", request_timeout=5.0
        ) as bot:
            ok = await (await fake.send_slash("imagine", {"prompt": "a key on a table"})).wait_done()
            gemini.script("prompt_blocked")
            await (await fake.send_slash("imagine", {"prompt": "blocked"})).wait_done()
            gemini.script("bad_key")
            await (await fake.send_slash("imagine", {"prompt": "bad key"})).wait_done()
            gemini.script("unavailable", "unavailable", "unavailable")
            await (await fake.send_slash("imagine", {"prompt": "down"})).wait_done()
            await (
                await fake.send_slash("imagine", {"prompt": "relay", "model": "nano-banana-2"})
            ).wait_done()
            route = r"/webhooks/.*/messages/@original"
            fake.fail_next("PATCH", route, 429, count=5, via=True, retry_after=0.05)  # upload refused
            refused = await wait_result(await fake.send_slash("imagine", {"prompt": "refused upload"}))
            assert "rate limiting this bot" in refused["embeds"][0]["description"]
            gemini.script("hang", "hang", "hang")  # past the timeout, every attempt
            await wait_result(await fake.send_slash("imagine", {"prompt": "slow"}))
            assert bot.health is not None
            endpoints = []
            async with aiohttp.ClientSession() as session:
                for path in ("/metrics", "/healthz"):
                    async with session.get(f"http://127.0.0.1:{bot.health.port}{path}") as response:
                        endpoints.append(await response.text())
            sent = await fake.user_message("make it shiny", reply_to=ok)
            await fake.wait_for_message(
                lambda m: (m.get("message_reference") or {}).get("message_id") == sent["id"], timeout=20
            )
            assert bot.db is not None
            async with bot.db.connect() as conn:
                rows = [
                    str(tuple(row))
                    for table in metadata.sorted_tables
                    for row in (await conn.execute(select(table))).all()
                ]
    assert len(rows) > 5
    texts = {
        "log": "\n".join(
            r.getMessage() + "".join(traceback.format_exception(*r.exc_info))
            if r.exc_info
            else r.getMessage()
            for r in caplog.records
        ),
        "discord": "\n".join(str(r.json) + str(r.query) for r in fake.requests if r.path != "/gateway"),
        "messages": str(dict(fake.messages)),
        "database": "\n".join(rows),
        "endpoints": "\n".join(endpoints),
        "files": file_texts(tmp_path),
    }
    assert "Provider account problem" in texts["discord"]  # the failures really happened
    assert "timed out" in texts["database"] or "did not answer" in texts["database"]
    for where, text in texts.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {where}"
