"""Nano Banana Discord bot: image generation, editing and upscaling with Google's Gemini image models."""

from importlib.metadata import PackageNotFoundError, version

try:
    #: The installed distribution's version (pyproject.toml's `version`), shown by --version, /readyz
    #: and nanobot_build_info.
    __version__ = version("nanobot")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0.0.0+unknown"
