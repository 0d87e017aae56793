"""The example files in the repository: .env.example as the settings make it, nanobot.example.toml loads."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.billing.costs import CostRules
from bot.config import Settings, load_settings
from bot.ops.envfile import EXAMPLES, REQUIRED, env_example, groups

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
TOML_EXAMPLE = ROOT / "nanobot.example.toml"
#: A commented-out setting line: `# NAME=value`.
SETTING_LINE = re.compile(r"^# ([A-Z][A-Z0-9_]*)=(.*)$")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of this machine's environment leaks into the example's."""
    for name in [*(n.upper() for n in Settings.model_fields), "NANOBOT_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"{name}_FILE", raising=False)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))  # none of the secret files is there
    monkeypatch.chdir(tmp_path)


def test_env_example_is_what_the_settings_make() -> None:
    assert ENV_EXAMPLE.read_text(encoding="utf-8") == env_example(), (
        ".env.example is out of date: run `python -m bot config env-example --write .env.example`"
    )


def test_env_example_lists_every_setting() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    listed = {m.group(1) for line in text.splitlines() if (m := SETTING_LINE.match(line))}
    listed |= set(dotenv_values(ENV_EXAMPLE))
    missing = [name.upper() for name in Settings.model_fields if name.upper() not in listed]
    assert missing == []


def test_every_setting_has_a_group_and_a_description() -> None:
    assert dict(groups()).get("Other") is None, "put the new setting in a group in bot/ops/envfile.py"
    for name, field in Settings.model_fields.items():
        assert field.description, f"{name} needs a docstring in bot/config.py"
        if name in EXAMPLES:  # the example shows instead of the default: say what the default does
            assert "unset:" in field.description or "empty:" in field.description, name


def test_only_the_minimal_settings_are_live() -> None:
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    assert lines[:3] == [
        "# The two settings a minimal install needs (or give them as files: see below):",
        *(f"{name.upper()}={value}" for name, value in REQUIRED.items()),
    ]
    assert dotenv_values(ENV_EXAMPLE) == {name.upper(): value for name, value in REQUIRED.items()}
    text = "\n".join(lines)
    assert "DISCORD_TOKEN_FILE=" in text and "SECRETS_DIR=/run/secrets" in text


def test_database_url_example_matches_docker_compose() -> None:
    compose = (ROOT / "docker-compose.yml").read_text()
    pg = dict(re.findall(r"POSTGRES_(USER|PASSWORD|DB): (\w+)", compose))
    expected = f"# DATABASE_URL=postgresql+asyncpg://{pg['USER']}:{pg['PASSWORD']}@db/{pg['DB']}"
    assert expected in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()


def test_every_line_of_env_example_is_a_valid_setting(tmp_path: Path) -> None:
    """Uncommented, the file loads; every value shown without an example is the setting's default."""
    lines = ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
    live = [m.group(1) + "=" + m.group(2) if (m := SETTING_LINE.match(line)) else line for line in lines]
    uncommented = tmp_path / "all.env"
    uncommented.write_text("\n".join(live) + "\n")
    settings = load_settings(env_file=uncommented)
    defaults = Settings.model_construct()
    for name in Settings.model_fields:
        if name not in EXAMPLES and name not in REQUIRED and name != "providers":
            assert getattr(settings, name) == getattr(defaults, name), name


def test_nanobot_example_toml_loads_every_kind_and_the_costs(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = tomllib.loads(TOML_EXAMPLE.read_text(encoding="utf-8"))
    envs = {e for p in raw["providers"] for e in [p.get("api_key_env"), *p.get("api_key_envs", [])] if e}
    for name in envs:
        monkeypatch.setenv(name, f"key-of-{name}")
    settings = load_settings(config_file=TOML_EXAMPLE, env_file=None)
    kinds = {p.kind for p in settings.providers}
    assert kinds == {"gemini", "openai-images", "nbpro", "task", "local"}
    for provider in settings.providers:
        assert [k.get_secret_value() for k in provider.api_keys] == [f"key-of-{e}" for e in provider.key_envs]
        assert provider.kind == "local" or str(provider.base_url).startswith("https://")
    assert set(raw["costs"]) == set(CostRules.model_fields)  # every cost rule, shown
    assert settings.costs == CostRules()  # at its default, as the file says
