"""Settings: environment, .env and TOML, secrets kept secret, one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import load_settings
from bot.errors import ConfigError


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "GEMINI_API_KEY",
        "GEMINI_BASE_URL",
        "DISCORD_TOKEN",
        "NANOBOT_CONFIG",
        "DATA_DIR",
        "DATABASE_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_gemini_key_alone_makes_a_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-secret")
    settings = load_settings()
    [provider] = settings.providers
    assert (provider.name, provider.kind) == ("gemini", "gemini")
    assert provider.base_url == "https://generativelanguage.googleapis.com"
    assert provider.api_key is not None and provider.api_key.get_secret_value() == "AIza-secret"
    assert "AIza-secret" not in repr(settings) and "AIza-secret" not in settings.model_dump_json()


def test_dotenv_and_base_url_override(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "GEMINI_API_KEY=k\nGEMINI_BASE_URL=http://127.0.0.1:1/\nDISCORD_TOKEN=tok\n"
    )
    settings = load_settings()
    assert settings.providers[0].base_url == "http://127.0.0.1:1"
    assert settings.discord_token is not None and settings.discord_token.get_secret_value() == "tok"


def test_default_database_under_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATA_DIR", "/srv/nb")
    assert load_settings().effective_database_url == "sqlite+aiosqlite:////srv/nb/nanobot.db"


def test_toml_providers_in_order_with_env_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RELAY_KEY", "sk-1")
    (tmp_path / "nanobot.toml").write_text(
        "request_timeout = 42\n"
        '[[providers]]\nname = "relay"\nkind = "openai-images"\nbase_url = "https://relay.example/"\n'
        'api_key_env = "RELAY_KEY"\nupscale = true\n'
        '[[providers]]\nname = "vtrix"\nkind = "task"\n'
    )
    settings = load_settings()
    assert [p.name for p in settings.providers] == ["relay", "vtrix"]
    assert settings.providers[0].base_url == "https://relay.example"
    assert settings.providers[0].models == ["nano-banana"]
    assert (
        settings.providers[1].base_url == "https://cloud.vtrix.ai" and settings.providers[1].api_key is None
    )
    assert settings.request_timeout == 42


def test_environment_beats_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "nanobot.toml").write_text("request_timeout = 42\n")
    monkeypatch.setenv("REQUEST_TIMEOUT", "7")
    assert load_settings().request_timeout == 7


@pytest.mark.parametrize(
    ("toml", "needle"),
    [
        ('[[providers]]\nname = "x"\nkind = "nope"\n', "providers.0.kind"),
        ('[[providers]]\nname = "x"\nkind = "openai-images"\n', "base_url"),
        (
            '[[providers]]\nname = "x"\nkind = "gemini"\n[[providers]]\nname = "x"\nkind = "nbpro"\n',
            "twice",
        ),
        ("request_timeout = -1\n", "REQUEST_TIMEOUT"),
        (
            '[[providers]]\nname = "x"\nkind = "gemini"\napi_key_env = "MISSING_VAR"\n',
            "MISSING_VAR",
        ),
        ("this is = not toml [", "not valid TOML"),
        ("shard_ids = [0]\n", "SHARD_IDS needs SHARD_COUNT"),
        ("shard_count = 2\nshard_ids = [0, 2]\n", "from 0 to 1"),
        ("shard_count = 2\nshard_ids = [1, 1]\n", "distinct"),
    ],
)
def test_bad_config_is_one_clear_line(tmp_path: Path, toml: str, needle: str) -> None:
    (tmp_path / "nanobot.toml").write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert needle in caught.value.user_message
    assert "\n" not in caught.value.user_message


def test_named_config_must_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NANOBOT_CONFIG", "/nonexistent/x.toml")
    with pytest.raises(ConfigError, match="NANOBOT_CONFIG"):
        load_settings()
