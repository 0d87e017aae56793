"""python -m bot: run the bot, or generate / edit / upscale / check from the command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.config import Settings, load_settings
from bot.errors import EXIT_INPUT, EXIT_PROVIDER, InputError, NanoBotError, SafetyBlocked
from bot.i18n import Text
from bot.jobs.inputs import prepare_inputs
from bot.jobs.spec import RawInput
from bot.ops.envfile import env_example, write_env_example
from bot.ops.logs import configure
from bot.providers.base import (
    GenerateRequest,
    GenerateResult,
    InputImage,
    ModelSpec,
    UpscaleRequest,
)
from bot.providers.http import HttpClient, Limits
from bot.providers.listing import list_providers, table
from bot.providers.netguard import check_url, has_scheme
from bot.providers.router import Router
from bot.wiring import provider_services

EXIT_OK = 0  # the failures' codes are facts of their errors (bot/errors.py)
RESOLUTIONS = ("0.5K", "1K", "2K", "4K")
log = logging.getLogger(__name__)


def _parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(prog="nanobot", description="Nano Banana Discord bot")
    parser.add_argument("--config", help="TOML config file (default: $NANOBOT_CONFIG or ./nanobot.toml)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("run", help="run the Discord bot (the default)")
    sub.add_parser("sync", help="push the slash commands to Discord now")
    db = sub.add_parser("db", help="database maintenance")
    db.add_argument("action", choices=["upgrade"])
    sub.add_parser("check", help="probe every configured provider")
    models = sub.add_parser("models", help="list each provider's models with the limits the bot applies")
    models.add_argument("--provider", help="only this provider")
    models.add_argument("--all", action="store_true", help="also list models that make no images")
    config = sub.add_parser("config", help="configuration files")
    config_sub = config.add_subparsers(dest="config_command", required=True)
    example = config_sub.add_parser("env-example", help="print .env.example, made from the settings")
    example.add_argument("--write", metavar="PATH", help="write it to PATH instead")
    for name in ("generate", "edit"):
        cmd = sub.add_parser(name, help=f"{name} an image and save it")
        cmd.add_argument("prompt")
        _job_options(cmd, required_image=name == "edit")
    up = sub.add_parser("upscale", help="upscale an image and save it")
    up.add_argument("--image", required=True, help="path or http(s) URL")
    up.add_argument("--factor", choices=["x2", "x4"], default="x2")
    up.add_argument("--provider")
    up.add_argument("--out", default=".")
    return parser


def _job_options(cmd: argparse.ArgumentParser, *, required_image: bool) -> None:
    """Options shared by generate and edit."""
    cmd.add_argument("--provider")
    cmd.add_argument("--model")
    cmd.add_argument("--aspect-ratio")
    cmd.add_argument("--resolution", choices=RESOLUTIONS, type=lambda v: v.upper())
    cmd.add_argument("--count", type=int, default=1)
    cmd.add_argument(
        "--image",
        action="append",
        default=[],
        required=required_image,
        help="reference image: a path or an http(s) URL (repeatable)",
    )
    cmd.add_argument("--out", default=".")


async def _read_source(source: str, http: HttpClient, limits: Limits) -> tuple[bytes, str | None]:
    """Bytes of a path or URL (URLs are kept so URL-only providers can use them)."""
    if source.startswith(("http://", "https://")):
        image = await http.download(source, provider="image URL", limits=limits)
        return image.data, source
    try:
        return await asyncio.to_thread(Path(source).read_bytes), None
    except OSError as e:
        if has_scheme(source):  # not a file: file:, ftp:, data: … URLs are refused by name
            await check_url(source)
        why = e.strerror or Text("imaging.source.missing")
        raise InputError(Text("imaging.source.unreadable", source=source, why=why)) from None


async def _inputs(
    sources: Sequence[str], spec: ModelSpec, http: HttpClient, settings: Settings
) -> list[InputImage]:
    """Load the reference images, then check and shrink them as the bot does."""
    limits = Limits(max_download_bytes=settings.max_input_bytes, download_timeout=settings.download_timeout)
    raws = []
    for source in sources:
        data, url = await _read_source(source, http, limits)
        raws.append(RawInput(data, Path(source).name or "image", url))
    return await prepare_inputs(settings, raws, spec)


def _write(result: GenerateResult, out: str, stem: str) -> list[Path]:
    """Save each image under out/ and return the paths."""
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    ext = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp", "image/gif": "gif"}
    paths = []
    for n, image in enumerate(result.images, 1):
        path = folder / f"{stem}-{n}.{ext.get(image.mime, 'bin')}"
        path.write_bytes(image.data)
        paths.append(path)
    return paths


async def _generate(args: argparse.Namespace, settings: Settings, router: Router, http: HttpClient) -> int:
    """generate / edit: build the request, call the router, save the images."""
    candidates = router.candidates(args.provider, args.model)
    spec = candidates[0].spec(args.model)
    images = await _inputs(args.image, spec, http, settings)
    request = GenerateRequest(
        prompt=args.prompt,
        model=args.model,
        images=images,
        aspect_ratio=args.aspect_ratio,
        resolution=args.resolution,
        count=args.count,
    )
    result = await router.generate(request, args.provider)
    return _report(result, args.out, args.command)


async def _upscale(args: argparse.Namespace, settings: Settings, router: Router, http: HttpClient) -> int:
    """upscale: the first upscale-capable provider, else the local upscaler."""
    spec = router.local.spec(None)
    [image] = await _inputs([args.image], spec, http, settings)
    result = await router.upscale(UpscaleRequest(image, int(args.factor[1:])), args.provider)
    return _report(result, args.out, "upscale")


def _report(result: GenerateResult, out: str, stem: str) -> int:
    """Print the written paths, one per line; the model's text goes to stderr."""
    for path in _write(result, out, f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}"):
        print(path)
    if result.text:
        print(f"{result.provider}/{result.model}: {result.text}", file=sys.stderr)
    return EXIT_OK


async def _check(router: Router) -> int:
    """Probe each provider; exit 3 if any failed."""
    status = EXIT_OK
    if not router.providers:
        print("no providers configured (set GEMINI_API_KEY or add [[providers]])", file=sys.stderr)
        return EXIT_INPUT
    for provider in router.providers:
        try:
            print(f"{provider.name} ({provider.kind}): {await provider.check()}")
        except NanoBotError as e:
            print(f"{provider.name} ({provider.kind}): FAILED: {e.user_message}")
            status = EXIT_PROVIDER
    return status


async def _models(args: argparse.Namespace, router: Router) -> int:
    """List each provider's models (one line per provider that fails; exit 3 if any failed)."""
    providers = [router.get(args.provider)] if args.provider else router.providers
    if not providers:
        print("no providers configured (set GEMINI_API_KEY or add [[providers]])", file=sys.stderr)
        return EXIT_INPUT
    listings = await list_providers(providers, everything=args.all)
    for failed in (listing for listing in listings if listing.error is not None):
        print(f"{failed.provider} ({failed.kind}): FAILED: {failed.error}", file=sys.stderr)
    print(table([row for listing in listings for row in listing.rows]))
    return EXIT_PROVIDER if any(listing.error is not None for listing in listings) else EXIT_OK


async def _offline(args: argparse.Namespace, settings: Settings) -> int:
    """Run one provider command on its own HTTP session."""
    async with provider_services(settings) as services:
        router, http = services.router, services.http
        if args.command == "check":
            return await _check(router)
        if args.command == "models":
            return await _models(args, router)
        if args.command == "upscale":
            return await _upscale(args, settings, router, http)
        return await _generate(args, settings, router, http)


def _fail(error: NanoBotError) -> int:
    """One line on stderr and the exit code for this kind of failure."""
    blocked = "blocked by safety filters: " if isinstance(error, SafetyBlocked) else ""
    print(f"error: {blocked}{error.user_message}", file=sys.stderr)
    return error.exit_code


def _config(args: argparse.Namespace) -> int:
    """config env-example: .env.example from the settings model (no settings needed)."""
    if args.write:
        try:
            write_env_example(args.write)
        except OSError as e:
            print(f"error: {args.write}: cannot be written ({e.strerror})", file=sys.stderr)
            return EXIT_INPUT
        print(args.write)
    else:
        sys.stdout.write(env_example())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `nanobot` and `python -m bot`."""
    args = _parser().parse_args(argv)
    command = args.command or "run"
    if command == "config":
        return _config(args)
    configure(logging.INFO if command in ("run", "sync") else logging.WARNING)
    try:
        settings = load_settings(config_file=args.config)
        level = settings.log_level if command in ("run", "sync") else "WARNING"
        configure(level, fmt=settings.log_format, levels=settings.log_levels)
        if command in ("run", "sync", "db"):
            from bot.app import run_command  # imported late: the bot needs discord.py's start-up

            return run_command(command, settings, args)
        return asyncio.run(_offline(args, settings))
    except NanoBotError as e:
        return _fail(e)
    except KeyboardInterrupt:
        return 130
