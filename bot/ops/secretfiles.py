"""Secrets from files, the two ways Docker and Kubernetes hand them over.

`NAME_FILE=/path` (in the environment or .env) reads NAME from that file, and a file named like the
setting in the secrets directory (`SECRETS_DIR`, default `/run/secrets` when it exists) holds its
value. Both serve the secret settings (DISCORD_TOKEN, GEMINI_API_KEY, DATABASE_URL) and every provider
key named by `api_key_env` / `api_key_envs`. Where they sit, highest first: NAME in the environment or
NAME_FILE there (both at once is an error), the same two in .env, the secrets directory, the TOML file.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource

from bot.errors import ConfigError

log = logging.getLogger(__name__)

#: Where Docker (`secrets:`) and most Kubernetes manifests mount secrets; SECRETS_DIR overrides it.
DEFAULT_SECRETS_DIR = Path("/run/secrets")
FILE_SUFFIX = "_FILE"

Values = Mapping[str, str | None]


def lowered(values: Values) -> dict[str, str | None]:
    """Variable names in lower case: names are matched leniently, as the settings are."""
    return {name.lower(): value for name, value in values.items()}


def read_secret_file(variable: str, path: str) -> str:
    """The secret a NAME_FILE variable points at, without its trailing newline.

    An unreadable file is a ConfigError naming the variable and the path, never the contents.
    """
    try:
        return Path(path).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        reason = "not UTF-8 text"
    except OSError as e:
        reason = e.strerror or type(e).__name__
    raise ConfigError(
        f"{variable} points to {path}, which cannot be read ({reason}); fix the path or the file"
    )


def from_file_variable(values: Values, name: str, where: str) -> str | None:
    """NAME's value from NAME_FILE in one place (the environment, or .env), or None when it is not set.

    `values` has lower-case names. NAME and NAME_FILE both set in the same place is a ConfigError:
    which one was meant cannot be guessed.
    """
    key = name.lower()
    path = values.get(key + FILE_SUFFIX.lower())
    if not path:
        return None
    variable = name.upper() + FILE_SUFFIX
    if values.get(key):  # an empty NAME counts as unset
        raise ConfigError(f"{name.upper()} and {variable} are both set in {where}; keep only one of them")
    return read_secret_file(variable, path)


def secrets_dir(*places: Values) -> Path | None:
    """SECRETS_DIR from the first place that sets it, else /run/secrets; None unless it is a directory.

    A missing /run/secrets is normal (most installs have none), so it is skipped without a warning;
    a SECRETS_DIR that names no readable directory is a ConfigError (its secrets would be missed).
    """
    named = next((v for place in places if (v := place.get("secrets_dir"))), None)
    path = Path(named).expanduser() if named else DEFAULT_SECRETS_DIR
    try:
        found = path.is_dir() and os.access(path, os.R_OK | os.X_OK)
    except OSError:  # not searchable: as good as missing
        found = False
    if named and not found:
        raise ConfigError(f"SECRETS_DIR: {path} is not a readable directory; fix the path or unset it")
    return path if found else None


def from_directory(directory: Path | None, name: str) -> str | None:
    """The secret in the file named like NAME (any case) in the secrets directory, or None."""
    if directory is None:
        return None
    try:
        path = SecretsSettingsSource.find_case_path(directory, name, case_sensitive=False)
        if path is None or not path.is_file():
            return None
    except OSError:
        return None
    # Stripped whole, as pydantic-settings reads this directory for the settings.
    return read_secret_file(f"the secret file for {name.upper()}", str(path)).strip()


class SecretLookup:
    """Secret values by variable name, from the highest place down: environment, .env, secrets dir."""

    def __init__(self, environ: Values, dotenv: Values) -> None:
        self.places = [("the environment", lowered(environ)), (".env", lowered(dotenv))]
        self.directory = secrets_dir(*(values for _, values in self.places))

    def get(self, name: str) -> str | None:
        """NAME, NAME_FILE, or the secrets directory's file, whichever place comes first."""
        for where, values in self.places:
            found = from_file_variable(values, name, where)
            if found is None:
                found = values.get(name.lower())
            if found:  # an empty value counts as unset
                return found
        return from_directory(self.directory, name)


def is_set(values: Values, name: str) -> bool:
    """Whether a place (lower-case names) gives NAME, directly or as NAME_FILE (empty values do not)."""
    key = name.lower()
    return bool(values.get(key) or values.get(key + FILE_SUFFIX.lower()))


class FileVariables(PydanticBaseSettingsSource):
    """A settings source: the NAME_FILE variables of one place, for the secret settings."""

    def __init__(
        self,
        settings_cls: type[BaseSettings],
        values: Values,
        where: str,
        names: Iterable[str],
        above: Values | None = None,
    ):
        """Read `values` for the settings called `names`, except those a higher place (`above`) sets."""
        super().__init__(settings_cls)
        self.values, self.where = lowered(values), where
        higher = lowered(above or {})
        self.names = tuple(n for n in names if not is_set(higher, n))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: __call__ reads every secret setting at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The secret settings whose NAME_FILE is set here, read from their files."""
        found = {name: from_file_variable(self.values, name, self.where) for name in self.names}
        return {name: value for name, value in found.items() if value is not None}


class SecretsDirectory(PydanticBaseSettingsSource):
    """The secrets directory (files named like the settings, as Docker and Kubernetes mount them),
    for the secret settings that no higher place sets; an unreadable file is a ConfigError."""

    def __init__(
        self, settings_cls: type[BaseSettings], directory: Path | None, names: Iterable[str], above: Values
    ):
        """Read files named like `names` from `directory` (None: read nothing)."""
        super().__init__(settings_cls)
        higher = lowered(above)
        self.directory = directory
        self.names = tuple(n for n in names if not is_set(higher, n))

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """Unused: __call__ reads every secret setting at once."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        """The secret settings that have a file in the directory (not for a setting set higher up)."""
        found = {name: from_directory(self.directory, name) for name in self.names}
        return {name: value for name, value in found.items() if value}
