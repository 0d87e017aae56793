"""Packaging an operator relies on: one locked install everywhere, the image's probe, the project files."""

from __future__ import annotations

import asyncio
import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web

from bot import __version__
from bot.config import Settings
from tests.botenv import eventually, running_bot
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini

ROOT = Path(__file__).resolve().parents[2]
KEY = "packaging-secret-gemini-key"


def read(name: str) -> str:
    """A file of the repository."""
    return (ROOT / name).read_text(encoding="utf-8")


def readme_commands() -> list[str]:
    """The shell commands of the README's "two commands" section."""
    section = read("README.md").split("## The two commands", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)[:2]


def uv_pins() -> dict[str, str]:
    """Where each install names its uv version: the README's commands, CI and the Dockerfile."""
    pins = {f"README command {i + 1}": cmd for i, cmd in enumerate(readme_commands())}
    pins[".ci/run"] = read(".ci/run")
    pins["Dockerfile"] = read("Dockerfile")
    return {where: m[1] for where, text in pins.items() if (m := re.search(r"uv==([\w.]+)", text))}


# --- one locked install everywhere ---------------------------------------------------------------


def test_every_install_uses_the_lock_with_the_same_uv() -> None:
    bot_cmd, test_cmd = readme_commands()
    assert "uv sync --locked" in bot_cmd and bot_cmd.endswith("python -m bot")
    assert "uv sync --locked --extra test" in test_cmd and test_cmd.endswith("pytest")
    assert re.search(r"^\.venv/bin/uv sync .*--locked --extra test", read(".ci/run"), re.MULTILINE)
    assert len(re.findall(r"uv sync --locked", read("Dockerfile"))) == 2
    pins = uv_pins()
    assert len(pins) == 4 and len(set(pins.values())) == 1, pins


def test_the_lock_pins_every_dependency_with_hashes() -> None:
    lock = tomllib.loads(read("uv.lock"))
    packages = {p["name"]: p for p in lock["package"]}
    project = tomllib.loads(read("pyproject.toml"))["project"]
    extras = project["optional-dependencies"]
    wanted = [*project["dependencies"], *extras["test"], *extras["lint"], *extras["postgres"]]
    for requirement in wanted:
        name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace(".", "-")
        assert name in packages, f"{name} is not in uv.lock"
    registry = [p for p in packages.values() if p["source"].get("registry")]
    assert registry and all(
        all("hash" in f for f in [*p.get("wheels", []), *([p["sdist"]] if "sdist" in p else [])])
        for p in registry
    )
    assert "orjson" in packages  # discord.py[speed]: the gateway parses JSON with orjson


def test_dependencies_stop_before_the_next_major_version() -> None:
    project = tomllib.loads(read("pyproject.toml"))["project"]
    runtime = [*project["dependencies"], *project["optional-dependencies"]["postgres"]]
    assert all("<" in requirement for requirement in runtime), runtime


# --- the image --------------------------------------------------------------------------------------


def dockerfile_healthcheck() -> list[str]:
    """The argv of the Dockerfile's HEALTHCHECK (exec form, continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", read("Dockerfile"))
    match = re.search(r"^HEALTHCHECK .*? CMD (\[.+\])$", joined, re.MULTILINE)
    assert match, "the Dockerfile has no HEALTHCHECK … CMD [...] line"
    argv: list[str] = json.loads(match[1])
    return argv


async def run_healthcheck(argv: list[str], port: int) -> int:
    """Run the image's health check as Docker would (exec form), against this port; its exit status."""
    env = {**os.environ, "HEALTH_PORT": str(port)}
    program = sys.executable if argv[0] == "python" else argv[0]
    proc = await asyncio.create_subprocess_exec(
        program, *argv[1:], env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    return await asyncio.wait_for(proc.wait(), 20)


def gemini(fake: FakeGemini) -> dict[str, Any]:
    """The fake Gemini as a provider entry."""
    return {"name": "google", "kind": "gemini", "base_url": fake.base_url, "api_key": KEY}


async def status_of(port: int, path: str) -> int:
    """The HTTP status of a GET on the health server."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}{path}") as answer:
        return answer.status


async def test_the_docker_healthcheck_is_liveness(tmp_path: Path) -> None:
    argv = dockerfile_healthcheck()
    assert argv[-1] == "/livez"
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as provider:
        async with running_bot(
            fake, tmp_path, gemini(provider), health_port=0, health_host="127.0.0.1"
        ) as bot:
            assert bot.health is not None
            port = bot.health.port
            assert await run_healthcheck(argv, port) == 0
            await fake.stop()  # Discord goes away: not ready, but alive; Docker must not call it unhealthy
            await eventually(lambda: all(s.is_closed() for s in bot.shards.values()))
            assert await status_of(port, "/readyz") == 503
            assert await run_healthcheck(argv, port) == 0
            assert await run_healthcheck([*argv[:-1], "/readyz"], port) != 0
    assert await run_healthcheck(argv, port) != 0  # nothing listening


def test_the_image_builds_in_two_stages_on_a_pinned_base() -> None:
    text = read("Dockerfile")
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base and re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base[1])
    stages = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
    assert "COPY --from=build /venv /venv" in text
    assert re.search(r"^USER 10001$", text, re.MULTILINE)


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps a path out of the build context (the last matching rule wins)."""
    ignored = False
    for rule in read(".dockerignore").splitlines():
        rule = rule.strip()
        if not rule or rule.startswith("#"):
            continue
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/").removeprefix("**/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatch(p, pattern) for p in prefixes) or fnmatch.fnmatch(parts[-1], pattern):
            ignored = not negate
    return ignored


def test_the_build_context_carries_no_secrets_or_data() -> None:
    for secret in (
        ".env",
        "nanobot.toml",
        "data/nanobot.db",
        "data/blobs/ab/cd.png",
        ".venv/bin/python",
        ".git/config",
        "secrets/discord_token",
        "tests/unit/test_ops.py",
    ):
        assert dockerignored(secret), secret
    for needed in ("pyproject.toml", "uv.lock", "README.md", "LICENSE", "bot/app.py", "cogs/generate.py"):
        assert not dockerignored(needed), needed
    copied = re.findall(r"^COPY (?!--from)(.+) \S+$", read("Dockerfile"), re.MULTILINE)
    for sources in copied:
        for source in sources.split():
            assert not dockerignored(source), f"the Dockerfile copies {source}, which .dockerignore drops"


def test_stopping_gives_running_jobs_their_grace() -> None:
    grace = Settings.model_fields["shutdown_grace"].default
    compose = yaml.safe_load(read("docker-compose.yml"))
    assert float(compose["services"]["bot"]["stop_grace_period"].rstrip("s")) > grace
    docker_run = next(line for line in read("README.md").splitlines() if "docker run" in line)
    argv = shlex.split(docker_run.strip("`"))
    assert float(argv[argv.index("--stop-timeout") + 1]) > grace


# --- project files ----------------------------------------------------------------------------------


def test_the_licence_file_is_the_declared_mit() -> None:
    project = tomllib.loads(read("pyproject.toml"))["project"]
    assert project["license"] == "MIT" and project["license-files"] == ["LICENSE"]
    assert read("LICENSE").startswith("MIT License")
    for name in ("CHANGELOG.md", "SECURITY.md"):
        assert (ROOT / name).is_file(), name


def test_the_version_is_known_at_run_time() -> None:
    declared = tomllib.loads(read("pyproject.toml"))["project"]["version"]
    assert __version__ == declared
    out = subprocess.run(
        [sys.executable, "-m", "bot", "--version"], capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.strip() == f"nanobot {declared}"


def test_the_kubernetes_example_probes_the_right_paths() -> None:
    block = next(b for b in re.findall(r"```yaml\n(.+?)```", read("README.md"), re.DOTALL) if "Probe" in b)
    [container] = yaml.safe_load(block)["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    grace = yaml.safe_load(block)["spec"]["terminationGracePeriodSeconds"]
    assert grace > Settings.model_fields["shutdown_grace"].default
    routes = re.findall(r'add_get\("(/\w+)"', (ROOT / "bot/ops/health.py").read_text())
    assert {"/livez", "/readyz", "/healthz", "/metrics"} <= set(routes)


async def test_the_probe_asks_the_address_the_server_listens_on(tmp_path: Path) -> None:
    async def livez(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app = web.Application()
    app.router.add_get("/livez", livez)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.2", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for host, status in (("127.0.0.2", 0), ("0.0.0.0", 1), ("", 1)):  # 127.0.0.1 has nothing
            env = {**os.environ, "HEALTH_PORT": str(port), "HEALTH_HOST": host}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot.ops.probe", env=env, stderr=asyncio.subprocess.DEVNULL
            )
            assert await asyncio.wait_for(proc.wait(), 20) == status, host
    finally:
        await runner.cleanup()
