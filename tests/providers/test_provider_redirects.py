"""A provider API that redirects its calls elsewhere, or answers with a hostile error body.

An "internal" service listens on 127.0.0.2 (all of 127/8 is loopback on Linux): it stands for an
admin page or a cloud metadata endpoint that the bot must never reach on a provider's say-so.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yarl
from aiohttp import web

from bot.errors import BadRequest, ProviderUnavailable
from bot.providers.base import GenerateRequest
from bot.providers.gemini import map_error as gemini_errors
from bot.providers.http import MAX_REDIRECTS, HttpClient, Limits, RetryPolicy
from bot.providers.router import Router
from bot.providers.sanitize import MAX_REASON, clean_message, reason
from tests.botenv import running_bot, settled_usage
from tests.fakes.discord import FakeDiscord
from tests.fakes.providers import FakeGemini, FakeNBPro, FakeOpenAIImages, FakeProvider, FakeTask, Fault
from tests.fakes.providers.base import RecordedRequest, record_request

KEY = "AIzaSyRedirectTestKey0123456789abcdefg"
SECRET_PAGE = "<html><body><h1>INTERNAL-SECRET-PAGE</h1><p>db password: hunter2</p></body></html>"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Server:
    """A small aiohttp server on a chosen loopback address that records every request it receives."""

    def __init__(self, host: str, answer: Handler) -> None:
        self.host = host
        self.answer = answer
        self.requests: list[RecordedRequest] = []
        self.port = 0
        self._runner: web.AppRunner | None = None

    @property
    def base_url(self) -> str:
        """Root URL of the running server."""
        return f"http://{self.host}:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        """Record, then answer."""
        self.requests.append(await record_request(request))
        return await self.answer(request)

    async def __aenter__(self) -> Server:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


async def secret_page(_: web.Request) -> web.Response:
    """What the internal service answers: a 500 with a page nobody outside may read."""
    return web.Response(status=500, text=SECRET_PAGE, content_type="text/html")


@pytest.fixture
async def internal() -> AsyncIterator[Server]:
    async with Server("127.0.0.2", secret_page) as server:
        yield server


def assert_nothing_leaked(message: dict[str, Any]) -> None:
    """Neither the internal page, nor the key, nor the internal address reached the user."""
    shown = json.dumps(message)
    for secret in ("INTERNAL-SECRET", "hunter2", KEY, "127.0.0.2", "<html", "<h1>"):
        assert secret not in shown


async def imagine(fake: FakeDiscord, prompt: str = "a lamp") -> dict[str, Any]:
    inter = await fake.send_slash("imagine", {"prompt": prompt})
    return await inter.wait_done(timeout=60)


def gemini_entry(gemini: FakeGemini) -> dict[str, Any]:
    return {"name": "google", "kind": "gemini", "base_url": gemini.base_url, "api_key": KEY}


@pytest.mark.parametrize(
    ("status", "location"),
    [
        (307, "http://127.0.0.2:{port}/v1beta/models/x:generateContent"),
        (308, "//127.0.0.2:{port}/collect"),  # scheme-relative
        (302, "http://127.0.0.2:{port}/collect"),
        (303, "http://127.0.0.2:{port}/collect"),
    ],
)
async def test_api_redirect_to_an_internal_host_is_refused(
    tmp_path: Path, internal: Server, status: int, location: str
) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        async with running_bot(fake, tmp_path, gemini_entry(gemini)) as bot:
            hop = Fault("redirect", status=status, message=location.replace("{port}", str(internal.port)))
            gemini.script(hop, hop, hop)  # as many as the bot would try
            message = await imagine(fake, "a secret lamp")
            assert internal.requests == []  # no prompt, no key: not even a connection
            [embed] = message["embeds"]
            assert "Provider unavailable" in embed["title"] and message["flags"] & 64
            assert "redirected the request to another host; refused" in embed["description"]
            assert_nothing_leaked(message)
            assert not fake.files_of(message)
            assert await settled_usage(fake, bot) == (0, 0)
            gemini.clear_script()
            assert fake.files_of(await imagine(fake))
            assert await settled_usage(fake, bot) == (100, 0)
            assert internal.requests == []
        assert fake.violations == []


async def test_api_redirect_on_the_same_host_is_followed(tmp_path: Path) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        async with running_bot(fake, tmp_path, gemini_entry(gemini)) as bot:
            gemini.script(Fault("redirect", status=307))  # to the very same path
            assert fake.files_of(await imagine(fake, "a moved lamp"))
            first, second = gemini.requests[-2:]
            assert (first.method, second.method) == ("POST", "POST")  # 307 keeps the method and body
            assert second.json == first.json and second.headers.get("x-goog-api-key") == KEY
            assert await settled_usage(fake, bot) == (100, 0)
        assert fake.violations == []


@pytest.mark.parametrize(
    ("fault", "needle", "hidden"),
    [
        (Fault("html", status=502), "HTTP 502", ("<", "That's an error", "html")),
        (
            Fault(
                "server_error",
                message="<b>boom</b> at http://10.9.8.7:8080/admin?token=abc, host db.internal.corp:5432, "
                "key AIzaSyLeakedLeakedLeakedLeaked1234567",
            ),
            "HTTP 500",
            ("<b>", "10.9.8.7", "http", "db.internal.corp", "AIzaSyLeaked", "token=abc"),
        ),
        (
            Fault("server_error", status=400, message="Bad field; see [the docs](https://evil.example/x)"),
            "HTTP 400",
            ("evil.example", "](", "https"),
        ),
    ],
)
async def test_provider_error_body_is_not_echoed(
    tmp_path: Path, fault: Fault, needle: str, hidden: tuple[str, ...]
) -> None:
    async with FakeDiscord() as fake, FakeGemini(api_key=KEY) as gemini:
        async with running_bot(fake, tmp_path, gemini_entry(gemini)) as bot:
            gemini.script(fault, fault, fault)
            message = await imagine(fake)
            [embed] = message["embeds"]
            assert message["flags"] & 64 and not fake.files_of(message)
            assert needle in embed["description"]
            for text in hidden:
                assert text not in embed["description"]
            assert_nothing_leaked(message)
            assert await settled_usage(fake, bot) == (0, 0)
            gemini.clear_script()
            assert fake.files_of(await imagine(fake))
        assert fake.violations == []


# -- the shared HTTP client, hop by hop --------------------------------------------------------


async def hops(request: web.Request) -> web.Response:
    """/to?status=307&loc=/end redirects; /loop redirects to itself; /bare is a 302 without Location."""
    if request.path == "/to":
        return web.Response(status=int(request.query["status"]), headers={"Location": request.query["loc"]})
    if request.path == "/loop":
        return web.Response(status=302, headers={"Location": "/loop"})
    if request.path == "/bare":
        return web.Response(status=302)
    return web.json_response({"ok": True})


async def call(session: aiohttp.ClientSession, url: str, **kwargs: Any) -> Any:
    """One API call through the real HttpClient, with a key header and a JSON body, no retries."""
    http = HttpClient(session, RetryPolicy(attempts=1))
    return await http.request_json(
        "POST",
        url,
        provider="p",
        mapper=gemini_errors("p"),
        limits=Limits(),
        headers={"x-goog-api-key": KEY},
        **({"json_body": {"prompt": "a lamp"}} | kwargs),
    )


def hop_url(api: Server, status: int, location: str) -> str:
    return str(yarl.URL(f"{api.base_url}/to").with_query(status=str(status), loc=location))


@pytest.mark.parametrize(
    ("status", "method", "body_kept"),
    [(301, "GET", False), (302, "GET", False), (303, "GET", False), (307, "POST", True), (308, "POST", True)],
)
async def test_same_origin_hops_follow_the_rules(
    session: aiohttp.ClientSession, status: int, method: str, body_kept: bool
) -> None:
    async with Server("127.0.0.1", hops) as api:
        assert await call(session, hop_url(api, status, "/end")) == {"ok": True}
        first, second = api.requests
        assert second.path == "/end" and second.method == method
        assert (second.json == first.json == {"prompt": "a lamp"}) is body_kept
        assert second.headers.get("x-goog-api-key") == KEY  # the same origin: the configured host


async def test_307_sends_a_fresh_multipart_body(session: aiohttp.ClientSession) -> None:
    def form() -> aiohttp.FormData:
        data = aiohttp.FormData()
        data.add_field("prompt", "a lamp")
        data.add_field("image", b"\x89PNG-bytes", filename="image0.png", content_type="image/png")
        return data

    async with Server("127.0.0.1", hops) as api:
        assert await call(session, hop_url(api, 307, "/end"), json_body=None, form=form) == {"ok": True}
        first, second = api.requests
        assert second.form == first.form == {"prompt": ["a lamp"]}
        assert second.files == first.files and second.files[0][3] == b"\x89PNG-bytes"


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.1:{other}/end",  # same address, another port: another service
        "http://localhost:{api}/end",  # another host name, even if it reaches the same place
        "https://127.0.0.1:{api}/end",  # another scheme
        "http://127.0.0.2:{internal}/end",
        "http://[::ffff:127.0.0.2]:{internal}/end",
        "file:///etc/passwd",
        "gopher://127.0.0.1:{api}/_x",
    ],
)
async def test_hop_to_another_origin_is_refused(
    session: aiohttp.ClientSession, internal: Server, location: str
) -> None:
    async with Server("127.0.0.1", hops) as api, Server("127.0.0.1", secret_page) as other:
        target = location.format(api=api.port, other=other.port, internal=internal.port)
        with pytest.raises(
            ProviderUnavailable, match="p redirected the request to another host; refused"
        ) as caught:
            await call(session, hop_url(api, 307, target))
        assert len(api.requests) == 1 and other.requests == [] and internal.requests == []
        assert "127.0.0" not in str(caught.value) and "localhost" not in str(caught.value)


async def test_redirect_loop_is_bounded(session: aiohttp.ClientSession) -> None:
    async with Server("127.0.0.1", hops) as api:
        with pytest.raises(ProviderUnavailable, match="too many times"):
            await call(session, f"{api.base_url}/loop")
        assert len(api.requests) == MAX_REDIRECTS + 1


async def test_redirect_without_location_is_an_error(session: aiohttp.ClientSession) -> None:
    async with Server("127.0.0.1", hops) as api:
        with pytest.raises(ProviderUnavailable, match=r"unexpected answer \(HTTP 302\)"):
            await call(session, f"{api.base_url}/bare")


# -- every wire format -------------------------------------------------------------------------

OTHER_KEY = "sk-redirect-test-key-0123456789"
HOSTILE = (
    "boom at http://10.9.8.7:8080/admin?token=abc on db.internal.corp:5432 "
    "with sk-live-abcdefghijklmnopqrstuvwxyz012345 [click](https://evil.example/phish)"
)
HIDDEN = ("10.9.8.7", "http", "db.internal.corp", "sk-live", "token=abc", "evil.example", "[click]", "<")

FAKES: list[tuple[type[FakeProvider], str]] = [
    (FakeOpenAIImages, "openai-images"),
    (FakeNBPro, "nbpro"),
    (FakeTask, "task"),
    (FakeGemini, "gemini"),
]


@pytest.mark.parametrize(("fake_type", "kind"), FAKES)
async def test_every_wire_format_refuses_a_redirect_elsewhere(
    router_for: Callable[..., Router], internal: Server, fake_type: type[FakeProvider], kind: str
) -> None:
    async with fake_type(api_key=OTHER_KEY) as fake:
        router = router_for({"name": "p", "kind": kind, "base_url": fake.base_url, "api_key": OTHER_KEY})
        hop = Fault("redirect", status=307, message=f"http://127.0.0.2:{internal.port}/x")
        fake.script(hop, hop, hop)
        with pytest.raises(ProviderUnavailable, match="redirected the request to another host") as caught:
            await router.generate(GenerateRequest("a secret lamp"))
        assert internal.requests == [] and "127.0.0.2" not in str(caught.value)
        fake.clear_script()
        assert (await router.generate(GenerateRequest("a lamp"))).images


@pytest.mark.parametrize(
    ("fault", "error", "needle"),
    [
        (Fault("server_error", status=500, message=HOSTILE), ProviderUnavailable, "HTTP 500"),
        (Fault("server_error", status=400, message=HOSTILE), BadRequest, "HTTP 400"),
        (Fault("html", status=502), ProviderUnavailable, "HTTP 502"),
    ],
)
@pytest.mark.parametrize(("fake_type", "kind"), FAKES)
async def test_every_wire_format_shows_only_a_clean_reason(
    router_for: Callable[..., Router],
    fake_type: type[FakeProvider],
    kind: str,
    fault: Fault,
    error: type[Exception],
    needle: str,
) -> None:
    async with fake_type(api_key=OTHER_KEY) as fake:
        router = router_for({"name": "p", "kind": kind, "base_url": fake.base_url, "api_key": OTHER_KEY})
        fake.script(fault, fault, fault)
        with pytest.raises(error) as caught:
            await router.generate(GenerateRequest("a lamp"))
        shown = str(caught.value)
        assert needle in shown and len(shown) < 200 and "\n" not in shown
        for text in (*HIDDEN, "That's an error", "DOCTYPE"):
            assert text not in shown


# -- result downloads --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "location",
    [
        "http://127.0.0.2:{port}/img.png",
        "http://[::ffff:127.0.0.2]:{port}/img.png",
        "http://2130706434:{port}/img.png",  # 127.0.0.2 written as one number
        "http://127.2:{port}/img.png",  # and in its short form
    ],
)
async def test_download_hop_to_an_internal_address_is_refused(
    router_for: Callable[..., Router], internal: Server, location: str
) -> None:
    async def moved(_: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": location.format(port=internal.port)})

    async with FakeOpenAIImages(api_key=OTHER_KEY) as relay, Server("127.0.0.1", moved) as hop:
        router = router_for(
            {"name": "relay", "kind": "openai-images", "base_url": relay.base_url, "api_key": OTHER_KEY}
        )
        relay.script(Fault("url_hostile", message=f"http://127.0.0.1:{hop.port}/img.png"))
        with pytest.raises(ProviderUnavailable, match="unsafe image address"):
            await router.generate(GenerateRequest("a lamp"))
        assert internal.requests == []
        [fetched] = hop.requests  # the provider's own host is trusted; its redirect is not
        assert "authorization" not in fetched.headers and "x-goog-api-key" not in fetched.headers


async def test_downloads_never_carry_the_key(router_for: Callable[..., Router]) -> None:
    async with FakeOpenAIImages(api_key=OTHER_KEY) as relay:
        router = router_for(
            {"name": "relay", "kind": "openai-images", "base_url": relay.base_url, "api_key": OTHER_KEY}
        )
        relay.script("ok")
        assert (await router.generate(GenerateRequest("a lamp"))).images
        downloads = [r for r in relay.requests if r.method == "GET"]
        assert downloads and all("authorization" not in r.headers for r in downloads)


# -- the sanitiser -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            "The model is overloaded. Please try again later.",
            "The model is overloaded. Please try again later",
        ),
        ("API_KEY_INVALID: check insufficient_quota", "API_KEY_INVALID: check insufficient_quota"),
        ("see [the docs](https://evil.example/x) now", "see the docs now"),
        ("retry via https://example.com/a?b=c", "retry via (link)"),
        ("upstream 10.0.0.7:8080 and [fe80::1]:80 down", "upstream (address) and (address) down"),
        ("backend db.internal.corp:5432 or localhost:9000", "backend (host) or (host)"),
        ("key AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "key (redacted)"),
        ("Authorization: Bearer abc.def", "Authorization: (redacted)"),
        ("**bold** _it_ `code` > quote @everyone ~~x~~ ||spoiler||", "bold it code quote everyone x spoiler"),
        ("line one\nline two\r\n\x1b[31mred\u202eevil", "line one line two 31mred evil"),
        ("image0.png is over 7 MB", "image0.png is over 7 MB"),
    ],
)
def test_clean_message(raw: str, expected: str) -> None:
    assert clean_message(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "<!DOCTYPE html><html><body>INTERNAL-SECRET-PAGE</body></html>",
        "Error <b>boom</b>",
        "",
        "   ",
        None,
        {"nested": "object"},
        "x" * 500,  # one enormous word: nothing readable to keep
    ],
)
def test_nothing_showable_is_none(raw: Any) -> None:
    assert clean_message(raw) is None


def test_clean_message_is_short_and_cut_between_words() -> None:
    cleaned = clean_message("word " * 30 + "token-alpha-0001 " + "word " * 30)
    assert cleaned is not None and len(cleaned) <= MAX_REASON and cleaned.endswith("word…")
    cut = clean_message("x " * 59 + "key-alpha-0001-and-more")
    assert cut is not None and "key-" not in cut  # a word past the cap goes whole, never half


def test_reason() -> None:
    assert reason(502) == "HTTP 502"
    assert reason(502, "<html>INTERNAL-SECRET-PAGE</html>") == "HTTP 502"
    assert reason(400, None, "INVALID_ARGUMENT") == "HTTP 400: INVALID_ARGUMENT"
    assert reason(500, "Internal error, see http://10.0.0.1/") == "HTTP 500: Internal error, see (link)"
