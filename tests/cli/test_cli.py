"""`python -m bot` end to end: a real subprocess against fake providers over real HTTP."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from tests.fakes.imagegen import make_image
from tests.fakes.providers import FakeGemini, FakeNBPro, FakeOpenAIImages, FakeTask

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Fakes:
    gemini: FakeGemini
    relay: FakeOpenAIImages
    nbpro: FakeNBPro
    task: FakeTask


@pytest.fixture
async def fakes() -> AsyncIterator[Fakes]:
    async with (
        FakeGemini(api_key="g-key") as g,
        FakeOpenAIImages(api_key="r-key", flavor="relay") as r,
        FakeNBPro(api_key="n-key") as n,
        FakeTask(api_key="t-key") as t,
    ):
        yield Fakes(g, r, n, t)


@pytest.fixture
def config(tmp_path: Path, fakes: Fakes) -> Path:
    path = tmp_path / "nanobot.toml"
    path.write_text(
        f"""
retry_base_delay = 0.01
task_poll_interval = 0.01

[[providers]]
name = "google"
kind = "gemini"
base_url = "{fakes.gemini.base_url}"
api_key_env = "TEST_GEMINI_KEY"

[[providers]]
name = "relay"
kind = "openai-images"
base_url = "{fakes.relay.base_url}"
api_key_env = "TEST_RELAY_KEY"
models = ["nano-banana-2"]

[[providers]]
name = "nbpro"
kind = "nbpro"
base_url = "{fakes.nbpro.base_url}"
api_key_env = "TEST_NBPRO_KEY"

[[providers]]
name = "vtrix"
kind = "task"
base_url = "{fakes.task.base_url}"
api_key_env = "TEST_TASK_KEY"
"""
    )
    return path


async def nanobot(*args: str, config: Path | None, cwd: Path, extra_env: dict[str, str] | None = None) -> Run:
    """Run `python -m bot ARGS` as a child process while the fakes keep serving."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "DISCORD_", "NANOBOT_"))}
    env.update(
        TEST_GEMINI_KEY="g-key",
        TEST_RELAY_KEY="r-key",
        TEST_NBPRO_KEY="n-key",
        TEST_TASK_KEY="t-key",
        PYTHONPATH=str(ROOT),
    )
    if config is not None:
        env["NANOBOT_CONFIG"] = str(config)
    env.update(extra_env or {})
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return Run(proc.returncode or 0, out.decode(), err.decode())


def image_ratio(path: Path) -> float:
    with Image.open(io.BytesIO(path.read_bytes())) as im:
        return im.width / im.height


@pytest.mark.parametrize("provider", ["google", "relay", "nbpro", "vtrix"])
async def test_generate_writes_image_of_the_ratio(
    provider: str, config: Path, tmp_path: Path, fakes: Fakes
) -> None:
    run = await nanobot(
        "generate",
        "a red apple",
        "--provider",
        provider,
        "--aspect-ratio",
        "16:9",
        "--out",
        "out/",
        config=config,
        cwd=tmp_path,
    )
    assert run.code == 0, run.err
    [line] = run.out.splitlines()
    path = tmp_path / line
    assert path.parent == tmp_path / "out"
    assert image_ratio(path) == pytest.approx(16 / 9, rel=0.03)


async def test_blocked_prompt_exits_3_with_reason(config: Path, tmp_path: Path, fakes: Fakes) -> None:
    fakes.gemini.script("prompt_blocked")
    run = await nanobot("generate", "something bad", "--provider", "google", config=config, cwd=tmp_path)
    assert run.code == 3
    assert run.out == ""
    [line] = run.err.strip().splitlines()
    assert "blocked" in line and "PROHIBITED_CONTENT" in line


async def test_provider_failure_exits_3(config: Path, tmp_path: Path, fakes: Fakes) -> None:
    fakes.nbpro.script("out_of_credits")
    run = await nanobot("generate", "x", "--provider", "nbpro", config=config, cwd=tmp_path)
    assert run.code == 3 and "credits" in run.err
    assert len(run.err.strip().splitlines()) == 1


async def test_bad_aspect_ratio_exits_2(config: Path, tmp_path: Path, fakes: Fakes) -> None:
    run = await nanobot(
        "generate",
        "x",
        "--provider",
        "google",
        "--aspect-ratio",
        "7:3",
        config=config,
        cwd=tmp_path,
    )
    assert run.code == 2 and "7:3" in run.err
    assert fakes.gemini.calls == 0


async def test_edit_sends_the_image(config: Path, tmp_path: Path, fakes: Fakes) -> None:
    source = tmp_path / "in.jpg"
    source.write_bytes(make_image(300, 200, "JPEG", color=(200, 10, 10)))
    run = await nanobot(
        "edit",
        "make it blue",
        "--image",
        str(source),
        "--provider",
        "google",
        "--out",
        "o",
        config=config,
        cwd=tmp_path,
    )
    assert run.code == 0, run.err
    body = fakes.gemini.requests[-1].json
    assert body is not None
    parts = body["contents"][-1]["parts"]
    assert parts[0] == {"text": "make it blue"} and "inlineData" in parts[1]


async def test_edit_with_non_image_exits_2(config: Path, tmp_path: Path, fakes: Fakes) -> None:
    source = tmp_path / "fake.png"
    source.write_bytes(b"<html>not an image</html>")
    run = await nanobot("edit", "x", "--image", str(source), config=config, cwd=tmp_path)
    assert run.code == 2 and "fake.png" in run.err
    assert fakes.gemini.calls == 0


async def test_upscale_local_when_no_capable_provider(config: Path, tmp_path: Path) -> None:
    source = tmp_path / "small.png"
    source.write_bytes(make_image(160, 90, "PNG", color=(1, 100, 200)))
    run = await nanobot(
        "upscale",
        "--image",
        str(source),
        "--factor",
        "x4",
        "--out",
        "up",
        config=config,
        cwd=tmp_path,
    )
    assert run.code == 0, run.err
    with Image.open(tmp_path / run.out.strip()) as im:
        assert im.size == (640, 360)


async def test_check_reports_each_provider(config: Path, tmp_path: Path, fakes: Fakes) -> None:
    run = await nanobot("check", config=config, cwd=tmp_path, extra_env={"TEST_NBPRO_KEY": "sk-wrong"})
    assert run.code == 3
    lines = run.out.splitlines()
    assert any(line.startswith("google (gemini): ok") for line in lines)
    assert any(line.startswith("nbpro (nbpro): FAILED") for line in lines)
    assert "sk-wrong" not in run.out + run.err


async def test_invalid_config_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[providers]]\nname = "x"\nkind = "bogus"\n')
    run = await nanobot("generate", "x", config=bad, cwd=tmp_path)
    assert run.code == 2
    [line] = run.err.strip().splitlines()
    assert "providers.0.kind" in line and "Traceback" not in run.err


async def test_missing_key_variable_names_it(tmp_path: Path, fakes: Fakes) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        f'[[providers]]\nname = "g"\nkind = "gemini"\nbase_url = "{fakes.gemini.base_url}"\n'
        'api_key_env = "NOT_SET_ANYWHERE"\n'
    )
    run = await nanobot("generate", "x", config=cfg, cwd=tmp_path)
    assert run.code == 2 and "NOT_SET_ANYWHERE" in run.err


async def test_gemini_key_alone_is_enough(tmp_path: Path, fakes: Fakes) -> None:
    (tmp_path / ".env").write_text(f"GEMINI_API_KEY=g-key\nGEMINI_BASE_URL={fakes.gemini.base_url}\n")
    run = await nanobot("generate", "a pear", "--out", "o", config=None, cwd=tmp_path)
    assert run.code == 0, run.err
    assert fakes.gemini.requests[-1].headers["x-goog-api-key"] == "g-key"


async def test_no_provider_configured_exits_2(tmp_path: Path) -> None:
    run = await nanobot("generate", "x", config=None, cwd=tmp_path)
    assert run.code == 2 and "GEMINI_API_KEY" in run.err


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/a.png",
        "http://10.1.2.3/a.png",
        "http://[::1]:9/a.png",
        "http://169.254.169.254/latest/meta-data/",  # the cloud metadata service
        "http://[fe80::1]/a.png",
        "http://[::ffff:127.0.0.1]:9/a.png",
        "http://localhost:9/a.png",  # a name that resolves to loopback
    ],
)
async def test_image_url_to_a_private_address_is_refused(
    config: Path, tmp_path: Path, fakes: Fakes, url: str
) -> None:
    run = await nanobot("edit", "x", "--image", url, "--provider", "google", config=config, cwd=tmp_path)
    assert run.code == 2 and "private or local address" in run.err
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    assert fakes.gemini.calls == 0


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://127.0.0.1/a.png",
        "gopher://127.0.0.1:70/_x",
        "data:image/png;base64,iVBORw0K",
    ],
)
async def test_image_url_with_another_scheme_is_refused(
    config: Path, tmp_path: Path, fakes: Fakes, url: str
) -> None:
    run = await nanobot("edit", "x", "--image", url, "--provider", "google", config=config, cwd=tmp_path)
    assert run.code == 2 and "Only http(s) image URLs are allowed" in run.err
    assert len(run.err.strip().splitlines()) == 1 and "Traceback" not in run.err
    assert fakes.gemini.calls == 0


async def test_config_env_example_prints_and_writes_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("not toml [")  # no settings are needed, so broken ones do not matter
    expected = (ROOT / ".env.example").read_text(encoding="utf-8")
    printed = await nanobot("config", "env-example", config=bad, cwd=tmp_path)
    assert (printed.code, printed.out, printed.err) == (0, expected, "")
    written = await nanobot("config", "env-example", "--write", "out.env", config=bad, cwd=tmp_path)
    assert written.code == 0 and (tmp_path / "out.env").read_text(encoding="utf-8") == expected


def table_rows(out: str) -> dict[tuple[str, str], list[str]]:
    """`models` output as {(provider, model): [known, inputs, resolutions, ratios, grounding, note]}."""
    header, *lines = out.splitlines()
    assert header.split()[:3] == ["PROVIDER", "MODEL", "KNOWN"]
    rows = {}
    for line in lines:
        provider, model, *rest = line.split(maxsplit=7)
        rows[provider, model] = rest
    return rows


async def test_models_lists_each_providers_models_with_their_limits(
    config: Path, tmp_path: Path, fakes: Fakes
) -> None:
    from tests.fakes.providers.gemini import model_entry

    fakes.gemini.listed_models += [
        model_entry("gemini-3.1-flash-lite-image-preview"),
        model_entry("gemini-4-flash-image-preview"),  # a model the bot does not know
    ]
    fakes.gemini.list_page_max = 2  # the listing spans several pages
    run = await nanobot("models", config=config, cwd=tmp_path)
    assert run.code == 0, run.err
    rows = table_rows(run.out)
    standard = "1:1,2:3,3:2,3:4,4:3,4:5,5:4,9:16,16:9,21:9"
    assert rows["google", "gemini-3-pro-image-preview"][:5] == ["yes", "14", "1K,2K,4K", standard, "yes"]
    assert rows["google", "gemini-3.1-flash-lite-image-preview"][:5] == ["yes", "3", "1K", standard, "no"]
    assert rows["google", "gemini-4-flash-image-preview"][:5] == ["no", "3", "1K", standard, "no"]
    assert rows["google", "gemini-2.5-flash-image"][-1] == "configured"
    assert ("google", "gemini-2.5-flash") not in rows and ("google", "gemini-embedding-001") not in rows
    assert rows["relay", "nano-banana-2"][:3] == ["yes", "4", "1K,2K,4K"]
    assert ("relay", "nano-banana-hd") in rows  # listed by the host, though not configured
    assert rows["nbpro", "nano-banana-pro"][-1] == "configured (no list endpoint)"
    assert ("vtrix", "nano_banana_2") in rows
    lists = [r for r in fakes.gemini.requests if r.path == "/v1beta/models"]
    assert len(lists) == -(-len(fakes.gemini.listed_models) // 2)  # every page was fetched, and no more
    assert "pageToken" not in lists[0].query and all("pageToken" in r.query for r in lists[1:])
    assert {r.headers["x-goog-api-key"] for r in lists} == {"g-key"}
    assert fakes.relay.requests[-1].headers["Authorization"] == "Bearer r-key"
    assert not [key for key in ("g-key", "r-key", "n-key", "t-key") if key in run.out + run.err]


async def test_models_all_marks_what_makes_no_images(config: Path, tmp_path: Path, fakes: Fakes) -> None:
    run = await nanobot("models", "--all", "--provider", "google", config=config, cwd=tmp_path)
    assert run.code == 0, run.err
    rows = table_rows(run.out)
    assert rows["google", "gemini-2.5-flash"][-1] == "not an image model?"
    assert rows["google", "gemini-embedding-001"][-1] == "not an image model?"
    assert {provider for provider, _ in rows} == {"google"}


async def test_models_one_failing_provider_is_one_line_and_the_others_are_listed(
    config: Path, tmp_path: Path, fakes: Fakes
) -> None:
    run = await nanobot("models", config=config, cwd=tmp_path, extra_env={"TEST_RELAY_KEY": "sk-wrong-key"})
    assert run.code == 3
    [line] = run.err.strip().splitlines()
    assert line.startswith("relay (openai-images): FAILED:") and "Traceback" not in run.err
    rows = table_rows(run.out)
    assert ("google", "gemini-3-pro-image-preview") in rows and ("nbpro", "nano-banana-pro") in rows
    assert not [key for key in rows if key[0] == "relay"]
    assert "sk-wrong-key" not in run.out + run.err
