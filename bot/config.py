"""Settings from the environment, a .env file and an optional TOML file (NANOBOT_CONFIG)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

import yarl
from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.billing.costs import CostRules
from bot.errors import ConfigError

ProviderKind = Literal["gemini", "openai-images", "nbpro", "task", "local"]
GOOGLE_BASE_URL = "https://generativelanguage.googleapis.com"

DEFAULT_BASE_URLS: dict[str, str] = {
    "gemini": GOOGLE_BASE_URL,
    "nbpro": "https://nano-banana-pro.net",
    "task": "https://cloud.vtrix.ai",
}
DEFAULT_MODELS: dict[str, list[str]] = {
    "gemini": [
        "gemini-2.5-flash-image",
        "gemini-3-pro-image-preview",
        "gemini-3.1-flash-image-preview",
    ],
    "openai-images": ["nano-banana"],
    "nbpro": ["nano-banana-pro"],
    "task": ["nano_banana_2"],
    "local": ["local-upscaler"],
}


class ProviderConfig(BaseModel):
    """One [[providers]] entry: which wire format, where, with which key and models."""

    model_config = {"extra": "forbid"}

    name: str = Field(min_length=1, max_length=40)
    kind: ProviderKind
    base_url: str | None = None
    api_key_env: str | None = None
    api_key_envs: list[str] | None = Field(default=None, min_length=1)
    #: The first key (kept for compatibility); the provider rotates through api_keys.
    api_key: SecretStr | None = Field(default=None, exclude=True)
    api_keys: list[SecretStr] = Field(default_factory=list, exclude=True, repr=False)
    models: list[str] = Field(default_factory=list)
    upscale: bool = False
    response_format: Literal["url", "b64_json"] = "url"
    timeout: float | None = Field(default=None, gt=0)
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    max_input_images: int | None = Field(default=None, ge=0, le=16)
    aspect_ratios: list[str] | None = None
    resolutions: list[str] | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value else value

    @model_validator(mode="after")
    def _defaults(self) -> ProviderConfig:
        if self.api_key_env and self.api_key_envs:
            raise ValueError(f"provider '{self.name}': set api_key_env or api_key_envs, not both")
        self._merge_keys()
        if not self.models:
            self.models = list(DEFAULT_MODELS[self.kind])
        if self.base_url is None and self.kind != "local":
            if self.kind not in DEFAULT_BASE_URLS:
                raise ValueError(f"provider '{self.name}' of kind {self.kind} needs a base_url")
            self.base_url = DEFAULT_BASE_URLS[self.kind]
        return self

    def _merge_keys(self) -> None:
        """Keep api_key and api_keys in step: api_key is always the first of api_keys."""
        keys = ([self.api_key] if self.api_key is not None else []) + list(self.api_keys)
        self.set_keys([k.get_secret_value() for k in keys])

    def set_keys(self, values: list[str]) -> None:
        """Store the keys in order, without duplicates; api_key becomes the first."""
        unique = list(dict.fromkeys(v for v in values if v))
        self.api_keys = [SecretStr(v) for v in unique]
        self.api_key = self.api_keys[0] if self.api_keys else None

    @property
    def key_envs(self) -> list[str]:
        """The environment variables holding this provider's keys, in rotation order."""
        return list(self.api_key_envs or ([self.api_key_env] if self.api_key_env else []))


class Settings(BaseSettings):
    """Every setting of the bot; see the README's configuration table."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", case_sensitive=False)

    discord_token: SecretStr | None = None
    gemini_api_key: SecretStr | None = None
    gemini_base_url: str = GOOGLE_BASE_URL
    discord_api_base: str | None = None
    discord_gateway_url: str | None = None
    data_dir: Path = Path("./data")
    database_url: str | None = None
    log_level: str = "INFO"
    health_port: int | None = Field(None, ge=0, le=65535)
    health_host: str = "0.0.0.0"

    providers: list[ProviderConfig] = Field(default_factory=list)

    shard_count: int | None = Field(None, ge=1)
    shard_ids: list[int] | None = None
    #: Names this deployment in the instances table (default: the host name); see recovery.py.
    instance_id: str | None = Field(None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._-]+$")
    sync_guild_ids: list[int] = Field(default_factory=list)
    message_content_intent: bool = True
    costs: CostRules = Field(default_factory=lambda: CostRules())
    operator_daily_budget: float | None = Field(None, ge=0)
    max_concurrent_jobs: int = Field(2, ge=1, le=100)
    max_running_jobs: int = Field(8, ge=1, le=1000)
    max_queued_per_user: int = Field(3, ge=1, le=100)
    progress_interval: float = Field(3.0, gt=0)
    interaction_token_lifetime: float = Field(900.0, gt=0)

    request_timeout: float = Field(300.0, gt=0)
    connect_timeout: float = Field(15.0, gt=0)
    download_timeout: float = Field(60.0, gt=0)
    retry_attempts: int = Field(3, ge=1, le=10)
    retry_total_seconds: float = Field(120.0, ge=0)
    retry_base_delay: float = Field(1.0, ge=0)
    max_download_bytes: int = Field(100 * 1024 * 1024, gt=0)
    max_response_bytes: int = Field(256 * 1024 * 1024, gt=0)
    max_input_bytes: int = Field(25 * 1024 * 1024, gt=0)
    max_input_pixels: int = Field(64_000_000, gt=0)
    task_poll_interval: float = Field(3.0, gt=0)
    task_deadline: float = Field(600.0, gt=0)
    breaker_failures: int = Field(5, ge=1, le=1000)
    breaker_cooldown: float = Field(60.0, gt=0)
    fallback_on_no_image: bool = False

    blob_retention_days: float | None = Field(None, gt=0)
    history_depth: int = Field(8, ge=1, le=50)
    continue_policy: Literal["anyone", "starter"] = "anyone"

    #: Whether the image commands are offered (and honoured) in the bot's DMs; see dm_* below.
    allow_dms: bool = False
    dm_credits: float = Field(5.0, ge=0)
    dm_window: Literal["day", "week", "month"] = "day"
    dm_cooldown: int = Field(0, ge=0, le=86_400)
    #: Prompt phrases refused everywhere (every server, on top of its own blocklist, and DMs).
    blocklist: list[str] = Field(default_factory=list)
    #: Users refused everywhere (servers and DMs).
    blocked_users: list[int] = Field(default_factory=list)
    #: No result (an upscale above all) may have more pixels than this.
    max_output_pixels: int = Field(64_000_000, gt=0)
    shutdown_grace: float = Field(10.0, ge=0)
    heartbeat_interval: float = Field(30.0, gt=0)
    database_outage_seconds: float = Field(10.0, ge=0)

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        """SHARD_IDS needs SHARD_COUNT, and each id must be one of its shards, once."""
        if self.shard_ids is None:
            return self
        if self.shard_count is None:
            raise ValueError("SHARD_IDS needs SHARD_COUNT (the total number of shards of the bot)")
        bad = [i for i in self.shard_ids if not 0 <= i < self.shard_count]
        if bad or len(set(self.shard_ids)) != len(self.shard_ids) or not self.shard_ids:
            last = self.shard_count - 1
            raise ValueError(f"SHARD_IDS must be distinct shards from 0 to {last}, got {self.shard_ids}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Environment beats .env, which beats the TOML file (passed in as init values)."""
        return env_settings, dotenv_settings, init_settings

    @property
    def provider_hosts(self) -> set[str]:
        """The hosts of the configured providers (chosen by the operator, so trusted wherever they are)."""
        return {host for p in self.providers if p.base_url and (host := yarl.URL(p.base_url).host)}

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL, or a SQLite file under DATA_DIR."""
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'nanobot.db'}"


def _config_path(explicit: str | Path | None) -> Path | None:
    """The TOML file to read: explicit, NANOBOT_CONFIG, or ./nanobot.toml when present."""
    if explicit is not None:
        return Path(explicit)
    named = os.environ.get("NANOBOT_CONFIG")
    if named:
        return Path(named)
    default = Path("nanobot.toml")
    return default if default.is_file() else None


def _read_toml(path: Path | None, *, explicit: bool) -> dict[str, Any]:
    """Parse the TOML file, turning every failure into one clear line."""
    if path is None:
        return {}
    if not path.is_file():
        if explicit:
            raise ConfigError(f"NANOBOT_CONFIG: {path} does not exist; create it or unset NANOBOT_CONFIG")
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); fix the file") from None


def _describe(error: ValidationError, source: str) -> str:
    """One line naming the first bad setting and what is wrong with it."""
    first = error.errors()[0]
    loc = ".".join(str(p) for p in first["loc"])
    if not loc:  # a rule across settings: its message names them
        return f"Invalid settings: {first['msg'].removeprefix('Value error, ')}"
    name = loc.upper() if not loc.startswith("providers") else loc
    return f"Invalid setting {name}: {first['msg']} (set it in the environment, .env or {source})"


def _key_lookup(env_file: str | Path | None) -> dict[str, str | None]:
    """Environment variables, falling back to the .env file, for api_key_env references."""
    values: dict[str, str | None] = {}
    if env_file is not None and Path(env_file).is_file():
        values.update(dotenv_values(env_file))
    values.update(os.environ)
    return values


def _resolve_providers(settings: Settings, env_file: str | Path | None) -> None:
    """Attach keys to providers and add the implicit 'gemini' provider from GEMINI_API_KEY."""
    if not settings.providers and settings.gemini_api_key is not None:
        settings.providers = [
            ProviderConfig(
                name="gemini",
                kind="gemini",
                base_url=settings.gemini_base_url.rstrip("/"),
                api_key_env="GEMINI_API_KEY",
            )
        ]
    env = _key_lookup(env_file)
    seen: set[str] = set()
    for provider in settings.providers:
        if provider.name in seen:
            raise ConfigError(f"Invalid setting providers: the name '{provider.name}' is used twice")
        seen.add(provider.name)
        if provider.key_envs and provider.api_key is None:
            provider.set_keys([_key_from(env, provider.name, name) for name in provider.key_envs])


def _key_from(env: dict[str, str | None], provider: str, name: str) -> str:
    """One key from the environment, or a ConfigError naming the variable that is missing."""
    value = env.get(name)
    if not value:
        raise ConfigError(
            f"Provider '{provider}' reads its API key from {name}, "
            f"which is not set; set {name} in the environment or .env"
        )
    return value


def load_settings(
    *, config_file: str | Path | None = None, env_file: str | Path | None = ".env", **overrides: Any
) -> Settings:
    """Build the settings; raise ConfigError with one readable line when anything is wrong."""
    path = _config_path(config_file)
    explicit = config_file is not None or bool(os.environ.get("NANOBOT_CONFIG"))
    data = _read_toml(path, explicit=explicit)
    data.update(overrides)
    source = str(path) if path else "nanobot.toml"
    try:
        settings = Settings(_env_file=env_file, **data)  # type: ignore[call-arg]
    except ValidationError as e:
        raise ConfigError(_describe(e, source)) from None
    _resolve_providers(settings, env_file)
    return settings
