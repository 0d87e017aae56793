"""The bot runs with its token and provider keys only in files (NAME_FILE and a secrets directory)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from tests.botenv import running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini
from tests.fakes.settings import FAST

TOKEN = "tok-from-a-file-5d1e"
KEY = "AIza-from-a-file-77b3"


def toml_value(value: object) -> str:
    """A setting's value as TOML writes it (true/false, numbers, quoted strings)."""
    return str(value).lower() if isinstance(value, bool) else repr(value)


@pytest.fixture(autouse=True)
def nothing_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No secret, and no file variable, reaches the bot but what a test sets."""
    for name in ("DISCORD_TOKEN", "GEMINI_API_KEY", "GEMINI_BASE_URL", "GOOGLE_KEY", "NANOBOT_CONFIG"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)


def config_file(tmp_path: Path, fake: FakeDiscord, provider: str) -> Path:
    """A nanobot.toml pointing the bot at the fake Discord, with short retries, and no secret in it."""
    lines = [f"{name} = {toml_value(value)}" for name, value in FAST.items()]
    lines += [
        f'discord_api_base = "{fake.api_base}"',
        f'discord_gateway_url = "{fake.gateway_url}"',
        f'data_dir = "{tmp_path / "data"}"',
        provider,
    ]
    path = tmp_path / "nanobot.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("way", ["token-file-and-key-in-secrets-dir", "token-in-secrets-dir-and-key-file"])
async def test_token_and_key_only_in_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, way: str) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    monkeypatch.setenv("SECRETS_DIR", str(secrets))
    async with FakeDiscord(token=TOKEN) as fake, FakeGemini(api_key=KEY) as gemini:
        if way == "token-file-and-key-in-secrets-dir":
            (tmp_path / "token").write_text(TOKEN + "\n")
            monkeypatch.setenv("DISCORD_TOKEN_FILE", str(tmp_path / "token"))
            (secrets / "gemini_api_key").write_text(KEY + "\n")  # the implicit gemini provider
            monkeypatch.setenv("GEMINI_BASE_URL", gemini.base_url)
            provider = ""
        else:
            (secrets / "DISCORD_TOKEN").write_text(TOKEN)  # any case, as Docker secrets are often named
            (tmp_path / "google.key").write_text(KEY + "\n")
            monkeypatch.setenv("GOOGLE_KEY_FILE", str(tmp_path / "google.key"))
            provider = (
                f'[[providers]]\nname = "google"\nkind = "gemini"\nbase_url = "{gemini.base_url}"\n'
                'api_key_env = "GOOGLE_KEY"'
            )
        settings = load_settings(config_file=config_file(tmp_path, fake, provider), env_file=None)
        assert settings.discord_token is not None  # else the bot could not even log in

        async with running_bot(fake, tmp_path, settings=settings):
            inter = await fake.send_slash("imagine", {"prompt": "a key under a doormat"})
            message = await inter.wait_done()

        [(_, data)] = inter.files(message)
        assert data == gemini.outputs[-1]
        assert fake.gateway.identify_payloads[-1]["token"] == TOKEN
        assert any(r.headers.get("Authorization") == f"Bot {TOKEN}" for r in fake.requests)
        assert gemini.requests and all(r.headers.get("x-goog-api-key") == KEY for r in gemini.requests)
        assert fake.violations == []
