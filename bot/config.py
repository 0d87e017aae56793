"""Settings from the environment, a .env file, secret files and an optional TOML file (NANOBOT_CONFIG)."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

import yarl
from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from bot.billing.costs import CostRules
from bot.errors import ConfigError
from bot.ops.logs import LogFormat, level_name, parse_levels
from bot.ops.secretfiles import FileVariables, SecretLookup, SecretsDirectory, secrets_dir

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
    #: Requests per minute the provider allows (all keys together), and each key; shared by processes.
    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    key_requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    max_input_images: int | None = Field(default=None, ge=0, le=16)
    aspect_ratios: list[str] | None = None
    resolutions: list[str] | None = None
    #: Gemini: the largest request body (MB, base64 included) sent inline; bigger ones move their
    #: largest images to the Files API. 20 is what every Gemini host honours (Google's own takes 100).
    inline_limit_mb: float = Field(default=20.0, gt=0, le=100)

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
    """Every setting of the bot; the docstrings describe them (and .env.example is made from them)."""

    model_config = SettingsConfigDict(
        env_file=".env",
        extra="ignore",
        case_sensitive=False,
        use_attribute_docstrings=True,
        env_ignore_empty=True,  # `NAME=` is unset, so a placeholder line never hides a secret file
    )

    discord_token: SecretStr | None = None
    """The bot token (Developer Portal → Bot); needed to run the bot."""
    gemini_api_key: SecretStr | None = None
    """A Gemini API key; alone, it enables a provider named gemini of kind gemini."""
    gemini_base_url: str = GOOGLE_BASE_URL
    """Base URL of the implicit gemini provider that GEMINI_API_KEY alone makes."""
    discord_api_base: str | None = None
    """REST base URL, for a REST proxy; unset: Discord's."""
    discord_gateway_url: str | None = None
    """Gateway URL, for a gateway proxy; unset: Discord's."""
    data_dir: Path = Path("./data")
    """Where the database, the image files (blobs/) and the command hash live."""
    database_url: SecretStr | None = None
    """The database (a secret: it may hold a password); unset: SQLite at DATA_DIR/nanobot.db."""
    log_level: str = "INFO"
    """Logging level of the bot: DEBUG, INFO, WARNING, ERROR or CRITICAL."""
    log_format: LogFormat = "text"
    """Log events as text (one line each) or json (one JSON object per line)."""
    log_levels: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    """Levels of single loggers, as logger=LEVEL pairs; unset: LOG_LEVEL for every logger."""
    health_port: int | None = Field(None, ge=0, le=65535)
    """Serve /livez, /readyz (alias /healthz) and /metrics on this port; unset: off (8080 in Docker)."""
    health_host: str = "0.0.0.0"
    """Address the health server listens on (127.0.0.1 keeps it local)."""

    providers: list[ProviderConfig] = Field(default_factory=list)
    """The image providers in fallback order: [[providers]] in the TOML file (nanobot.example.toml)."""

    shard_count: int | None = Field(None, ge=1)
    """Total number of shards of the bot; unset: automatic."""
    shard_ids: list[int] | None = None
    """The shards this process runs (needs SHARD_COUNT); unset: all of them."""
    instance_id: str | None = Field(None, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._-]+$")
    """Names this deployment (with its SHARD_IDS) so a restart knows its own boot; unset: the host name."""
    sync_guild_ids: list[int] = Field(default_factory=list)
    """Register commands in these servers only (instant updates while developing); empty: globally."""
    message_content_intent: bool = True
    """Ask for the privileged Message Content intent (plain replies refine)."""
    costs: CostRules = Field(default_factory=lambda: CostRules())
    """The cost model: [costs] in the TOML file (nanobot.example.toml); {} keeps the defaults."""
    operator_daily_budget: float | None = Field(None, ge=0)
    """Credits all servers and DMs together may spend per UTC day; unset: unlimited."""
    max_concurrent_jobs: int = Field(2, ge=1, le=100)
    """Jobs one member may have running at once; more wait their turn (per server: jobs_at_once)."""
    max_running_jobs: int = Field(256, ge=1, le=10_000)
    """Safety valve: jobs running at once in this process (each provider's concurrency limits its own)."""
    max_queued_per_user: int = Field(10, ge=1, le=1000)
    """Jobs one member may have waiting in the queue behind their running ones; more are refused."""
    progress_interval: float = Field(3.0, gt=0)
    """Seconds between queue-position and running-time updates."""
    live_preview: bool = True
    """Show a thinking model's interim images in the progress message while it works (streamed calls)."""
    interaction_token_lifetime: float = Field(900.0, gt=0)
    """Seconds after which results are posted in the channel instead of the interaction."""

    request_timeout: float = Field(300.0, gt=0)
    """Seconds a generation call may take (per provider: timeout)."""
    connect_timeout: float = Field(15.0, gt=0)
    """Seconds to connect to a provider."""
    download_timeout: float = Field(60.0, gt=0)
    """Seconds to download a result image."""
    retry_attempts: int = Field(3, ge=1, le=10)
    """Attempts per call on 429/500/502/503/504 and network errors."""
    retry_total_seconds: float = Field(120.0, ge=0)
    """Retries stop when the next wait would pass this many seconds."""
    retry_base_delay: float = Field(1.0, ge=0)
    """First backoff delay in seconds (doubling), when the provider gives no hint."""
    max_download_bytes: int = Field(100 * 1024 * 1024, gt=0)
    """Cap on a result image download, in bytes."""
    max_response_bytes: int = Field(256 * 1024 * 1024, gt=0)
    """Cap on a provider's JSON answer, in bytes (base64 images are big)."""
    max_input_bytes: int = Field(25 * 1024 * 1024, gt=0)
    """Cap on an input image in bytes, checked before it is downloaded."""
    max_input_pixels: int = Field(64_000_000, gt=0)
    """Decompression-bomb guard for input images."""
    image_url_hosts: list[str] = Field(default_factory=list)
    """Hosts on a private network that image URLs given as references may name (every other private
    or local address is refused); empty: public addresses only."""
    task_poll_interval: float = Field(3.0, gt=0)
    """Seconds between polls of a task provider."""
    task_deadline: float = Field(600.0, gt=0)
    """Seconds before a task that has not finished is given up."""
    breaker_failures: int = Field(5, ge=1, le=1000)
    """Consecutive failures that pause a provider (safety blocks and bad requests do not count)."""
    breaker_cooldown: float = Field(60.0, gt=0)
    """Seconds a paused provider is skipped before one probe call is let through."""
    fallback_on_no_image: bool = False
    """When a provider answers without an image, try the next one (never after a safety block)."""

    blob_retention_days: float | None = Field(None, gt=0)
    """Image files unused this long are pruned (re-fetched from Discord if needed); unset: kept."""
    prompt_retention_days: float | None = Field(None, gt=0)
    """Jobs (prompts, results and their unused image files) older than this are deleted, and older
    audit rows keep only their cost; unset: kept."""
    history_depth: int = Field(8, ge=1, le=50)
    """Earlier turns replayed to Gemini on a reply (the reply says when history was cut)."""
    continue_policy: Literal["anyone", "starter"] = "anyone"
    """Who may continue a conversation: anyone in the channel, or its starter."""
    show_policy: Literal["server", "requester"] = "server"
    """Who may /show a result: its requester anywhere, and others in its server (server), or only
    its requester (requester)."""

    allow_dms: bool = False
    """Offer and honour the image commands in the bot's DMs."""
    user_install: bool = False
    """Let members add the bot to their own account and use the image commands where it is not a
    member (results only through the interaction; counted as DMs, so ALLOW_DMS applies)."""
    dm_credits: float = Field(5.0, ge=0)
    """Credits each user may spend in DMs per DM_WINDOW."""
    dm_window: Literal["day", "week", "month"] = "day"
    """The window of the DM allowance: day, week or month (UTC calendar)."""
    dm_cooldown: int = Field(0, ge=0, le=86_400)
    """Seconds between one user's jobs in DMs."""
    blocklist: list[str] = Field(default_factory=list)
    """Prompt phrases refused everywhere (every server, on top of its own blocklist, and DMs); empty: none."""
    blocked_users: list[int] = Field(default_factory=list)
    """User ids refused everywhere (servers and DMs); empty: none."""
    max_output_pixels: int = Field(64_000_000, gt=0)
    """No result (an upscale above all) may have more pixels than this."""
    shutdown_grace: float = Field(10.0, ge=0)
    """Seconds a stopping bot lets running jobs finish; the rest are refunded and their users told."""
    heartbeat_interval: float = Field(30.0, gt=0)
    """Seconds between heartbeats and maintenance rounds; a process silent for 3 is dead."""
    database_outage_seconds: float = Field(10.0, ge=0)
    """Seconds database work waits out an unreachable (or, on SQLite, locked) database."""

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        """A level logging knows, in upper case."""
        return level_name(value)

    @field_validator("log_levels", mode="before")
    @classmethod
    def _log_levels(cls, value: Any) -> Any:
        """logger=LEVEL pairs from the environment, or a TOML table; every level checked."""
        levels = parse_levels(value) if isinstance(value, str) else value
        if isinstance(levels, dict):
            return {name: level_name(str(level)) for name, level in levels.items()}
        return levels

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
        """Where settings come from, highest first: the environment, .env, secret files, the TOML file.

        The secret settings may also come from a NAME_FILE variable (at the place it is set: the
        environment, or .env) or from a file in the secrets directory (below .env, above the TOML).
        """
        names = [
            n for n, f in cls.model_fields.items() if SecretStr in (f.annotation, *get_args(f.annotation))
        ]
        environ, dotenv = _variables(env_settings), _variables(dotenv_settings)
        return (
            env_settings,
            FileVariables(settings_cls, environ, "the environment", names),
            dotenv_settings,
            FileVariables(settings_cls, dotenv, ".env", names, above=environ),
            SecretsDirectory(settings_cls, secrets_dir(environ, dotenv), names, {**dotenv, **environ}),
            init_settings,
        )

    @property
    def provider_hosts(self) -> set[str]:
        """The hosts of the configured providers (chosen by the operator, so trusted wherever they are)."""
        return {host for p in self.providers if p.base_url and (host := yarl.URL(p.base_url).host)}

    @property
    def effective_database_url(self) -> str:
        """DATABASE_URL in plain text (for the engine only: never log it), or a SQLite file under DATA_DIR."""
        if self.database_url is not None and self.database_url.get_secret_value():
            return self.database_url.get_secret_value()
        return f"sqlite+aiosqlite:///{self.data_dir / 'nanobot.db'}"


def _variables(source: PydanticBaseSettingsSource) -> Mapping[str, str | None]:
    """The variables an environment or .env source read (names in lower case)."""
    return source.env_vars if isinstance(source, EnvSettingsSource) else {}


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


def _key_lookup(env_file: str | Path | None) -> SecretLookup:
    """Where api_key_env references are found: the environment, .env, their _FILE forms, secret files."""
    dotenv = dotenv_values(env_file) if env_file is not None and Path(env_file).is_file() else {}
    return SecretLookup(os.environ, dotenv)


def _resolve_providers(settings: Settings, env_file: str | Path | None) -> None:
    """Attach keys to providers and add the implicit 'gemini' provider from GEMINI_API_KEY."""
    if not settings.providers and settings.gemini_api_key is not None:
        settings.providers = [
            ProviderConfig(
                name="gemini",
                kind="gemini",
                base_url=settings.gemini_base_url.rstrip("/"),
                api_key_env="GEMINI_API_KEY",
                api_key=settings.gemini_api_key,  # as resolved: environment, .env, files or TOML
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


def _key_from(env: SecretLookup, provider: str, name: str) -> str:
    """One key, or a ConfigError naming the variable that is missing."""
    value = env.get(name)
    if not value:
        raise ConfigError(
            f"Provider '{provider}' reads its API key from {name}, which is not set; set {name} "
            f"(or {name}_FILE, a file holding it) in the environment or .env, or add a secret file"
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
