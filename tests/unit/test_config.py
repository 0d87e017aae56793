"""Settings: environment, .env, secret files and TOML, secrets kept secret, one-line errors."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.config import load_settings
from bot.errors import ConfigError
from bot.ops import secretfiles
from bot.storage.engine import parse_url

SECRET_NAMES = ("GEMINI_API_KEY", "DISCORD_TOKEN", "DATABASE_URL", "OPENROUTER_KEY", "RELAY_KEY")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("GEMINI_BASE_URL", "NANOBOT_CONFIG", "DATA_DIR", "LOG_LEVEL", "LOG_LEVELS", "LOG_FORMAT"):
        monkeypatch.delenv(name, raising=False)
    for name in SECRET_NAMES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    # Whatever this machine has in /run/secrets stays out of these tests.
    (tmp_path / "no-secrets-here").mkdir()
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "no-secrets-here"))
    monkeypatch.chdir(tmp_path)


def secret(path: Path, value: str) -> str:
    """Write a secret file the way editors and `echo` do (trailing newline) and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(value + "\n")
    return str(path)


def plain(value: SecretStr | None) -> str | None:
    """The text of a SecretStr setting."""
    return None if value is None else value.get_secret_value()


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


def test_name_file_in_the_environment_or_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DISCORD_TOKEN_FILE", secret(tmp_path / "token", "tok-from-file"))
    db = secret(tmp_path / "db", "postgresql+asyncpg://nanobot:pw-from-file@db/nanobot")
    (tmp_path / ".env").write_text(f"database_url_file={db}\nGEMINI_API_KEY_FILE={tmp_path / 'token'}\n")
    settings = load_settings()
    assert plain(settings.discord_token) == "tok-from-file"  # the trailing newline is gone
    assert settings.effective_database_url == "postgresql+asyncpg://nanobot:pw-from-file@db/nanobot"
    assert settings.providers[0].api_key is not None  # the implicit gemini provider got its key
    assert plain(settings.providers[0].api_key) == "tok-from-file"


def test_secrets_directory_any_case(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "secrets"))
    secret(tmp_path / "secrets" / "DISCORD_TOKEN", "tok-in-dir")
    secret(tmp_path / "secrets" / "gemini_api_key", "AIza-in-dir")
    secret(tmp_path / "secrets" / "data_dir", "/not/a/secret")  # only secrets come from this directory
    settings = load_settings()
    assert (plain(settings.discord_token), plain(settings.gemini_api_key)) == ("tok-in-dir", "AIza-in-dir")
    assert plain(settings.providers[0].api_key) == "AIza-in-dir"
    assert settings.data_dir == Path("data")


def test_run_secrets_is_the_default_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRETS_DIR")
    monkeypatch.setattr(secretfiles, "DEFAULT_SECRETS_DIR", tmp_path / "run-secrets")
    secret(tmp_path / "run-secrets" / "discord_token", "tok-default-dir")
    assert plain(load_settings().discord_token) == "tok-default-dir"


def test_a_missing_run_secrets_is_quietly_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "tok")
    monkeypatch.delenv("SECRETS_DIR")
    monkeypatch.setattr(secretfiles, "DEFAULT_SECRETS_DIR", Path("/nonexistent/run/secrets"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert plain(load_settings().discord_token) == "tok"


def test_a_secrets_dir_that_is_not_a_directory_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for wrong in (tmp_path / "missing", secret(tmp_path / "a-file", "x")):
        monkeypatch.setenv("SECRETS_DIR", str(wrong))
        with pytest.raises(ConfigError, match=r"SECRETS_DIR: .* is not a readable directory"):
            load_settings()


def test_a_higher_place_wins_over_files_it_never_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DISCORD_TOKEN", "tok-env")
    (tmp_path / ".env").write_text("DISCORD_TOKEN_FILE=/nonexistent/token\n")
    secrets = tmp_path / "no-secrets-here"
    (secrets / "discord_token").write_bytes(b"\xff\xfe not text")  # never read: the environment wins
    assert plain(load_settings().discord_token) == "tok-env"


def test_an_empty_or_unreadable_secret_is_handled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "no-secrets-here"
    secret(secrets / "discord_token", "tok-from-file")
    monkeypatch.setenv("DISCORD_TOKEN", "")  # an empty line in .env or compose counts as unset
    assert plain(load_settings().discord_token) == "tok-from-file"
    (secrets / "gemini_api_key").write_bytes(b"\xff\xfe not text")
    with pytest.raises(ConfigError, match="GEMINI_API_KEY") as caught:
        load_settings()
    assert "not UTF-8" in str(caught.value)
    (secrets / "gemini_api_key").unlink()
    (secrets / "database_url").mkdir()  # a directory named like a setting is not a secret
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_settings().database_url is None


def test_provider_keys_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENROUTER_KEY_FILE", secret(tmp_path / "or.key", "sk-or-file"))
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "secrets"))
    secret(tmp_path / "secrets" / "relay_key", "sk-relay-dir")
    (tmp_path / "nanobot.toml").write_text(
        '[[providers]]\nname = "or"\nkind = "openai-images"\nbase_url = "https://openrouter.example"\n'
        'api_key_env = "OPENROUTER_KEY"\n'
        '[[providers]]\nname = "relay"\nkind = "openai-images"\nbase_url = "https://relay.example"\n'
        'api_key_envs = ["RELAY_KEY", "OPENROUTER_KEY"]\n'
    )
    first, second = load_settings().providers
    assert [plain(k) for k in first.api_keys] == ["sk-or-file"]
    assert [plain(k) for k in second.api_keys] == ["sk-relay-dir", "sk-or-file"]


def test_where_secrets_come_from_first(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Environment, then .env, then the secrets directory, then the TOML file."""
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path / "secrets"))
    (tmp_path / "nanobot.toml").write_text('discord_token = "from-toml"\ngemini_api_key = "from-toml"\n')
    secret(tmp_path / "secrets" / "discord_token", "from-dir")
    assert plain(load_settings().discord_token) == "from-dir"  # the directory beats TOML
    assert plain(load_settings().gemini_api_key) == "from-toml"  # TOML still serves what no file has
    (tmp_path / ".env").write_text(f"DISCORD_TOKEN_FILE={secret(tmp_path / 'dotenv.tok', 'from-dotenv')}\n")
    assert plain(load_settings().discord_token) == "from-dotenv"  # .env (a _FILE there) beats the directory
    monkeypatch.setenv("DISCORD_TOKEN_FILE", secret(tmp_path / "env.tok", "from-env-file"))
    assert plain(load_settings().discord_token) == "from-env-file"  # the environment beats .env
    (tmp_path / ".env").write_text("DISCORD_TOKEN=from-dotenv-plain\n")
    assert plain(load_settings().discord_token) == "from-env-file"  # NAME_FILE here beats NAME in .env


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_name_and_name_file_together_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, where: str
) -> None:
    path = secret(tmp_path / "token", "tok-file")
    if where == "environment":
        monkeypatch.setenv("DISCORD_TOKEN", "tok-plain")
        monkeypatch.setenv("DISCORD_TOKEN_FILE", path)
    else:
        (tmp_path / ".env").write_text(f"DISCORD_TOKEN=tok-plain\nDISCORD_TOKEN_FILE={path}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.user_message
    assert "DISCORD_TOKEN and DISCORD_TOKEN_FILE" in message and where in message
    assert "tok-plain" not in message and "tok-file" not in message


def test_provider_key_and_its_file_together_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RELAY_KEY", "sk-plain")
    monkeypatch.setenv("RELAY_KEY_FILE", secret(tmp_path / "k", "sk-file"))
    (tmp_path / "nanobot.toml").write_text(
        '[[providers]]\nname = "relay"\nkind = "nbpro"\napi_key_env = "RELAY_KEY"\n'
    )
    with pytest.raises(ConfigError, match="RELAY_KEY and RELAY_KEY_FILE"):
        load_settings()


@pytest.mark.parametrize("target", ["missing", "directory", "binary"])
def test_unreadable_name_file_names_variable_and_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, target: str
) -> None:
    path = tmp_path / "the-token"
    if target == "directory":
        path.mkdir()
    elif target == "binary":
        path.write_bytes(b"\xff\xfeSECRET-BYTES")
    monkeypatch.setenv("DISCORD_TOKEN_FILE", str(path))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.user_message
    assert "DISCORD_TOKEN_FILE" in message and str(path) in message and "\n" not in message
    assert "SECRET" not in message


def test_database_url_is_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://nanobot:hunter2-pw@db/nanobot"
    monkeypatch.setenv("DATABASE_URL", url)
    settings = load_settings()
    assert settings.effective_database_url == url  # the engine still gets the plain URL
    for shown in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert "hunter2-pw" not in shown


@pytest.mark.parametrize(
    "url",
    [
        "nanobot:hunter2-pw@db/nanobot",  # no scheme
        "mysql://nanobot:hunter2-pw@db/nanobot",
    ],
)
def test_a_bad_database_url_is_never_echoed(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setenv("DATABASE_URL", url)
    with pytest.raises(ConfigError) as caught:
        parse_url(load_settings().effective_database_url)
    assert "DATABASE_URL" in caught.value.user_message and "hunter2-pw" not in caught.value.user_message


def test_log_settings_from_the_environment_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOG_LEVELS", "discord=warning, bot.providers=DEBUG")
    monkeypatch.setenv("LOG_FORMAT", "json")
    monkeypatch.setenv("LOG_LEVEL", "debug")
    settings = load_settings()
    assert settings.log_levels == {"discord": "WARNING", "bot.providers": "DEBUG"}
    assert (settings.log_format, settings.log_level) == ("json", "DEBUG")
    monkeypatch.delenv("LOG_LEVELS")
    (tmp_path / "nanobot.toml").write_text('[log_levels]\n"discord.gateway" = "ERROR"\n')
    assert load_settings().log_levels == {"discord.gateway": "ERROR"}


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("LOG_LEVELS", "discord=LOUD", "LOUD"),
        ("LOG_LEVELS", "discord", "logger=LEVEL"),
        ("LOG_LEVELS", "=DEBUG", "logger=LEVEL"),
        ("LOG_LEVEL", "chatty", "chatty"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT"),
    ],
)
def test_bad_log_settings_are_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, needle: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = caught.value.user_message
    assert name in message and needle in message and "\n" not in message
