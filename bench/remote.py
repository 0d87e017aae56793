"""The fake Gemini in a process of its own, for scenarios whose requests are big.

A 14-reference request is a 15–20 MB JSON body: parsing it and decoding its base64 takes the fake
~150 ms of C code that holds the GIL. In the bot's process that would stall the bot's event loop and
be counted as the bot's lag; in its own process it costs the bot nothing, as a real provider does.

Run as `python -m bench.remote --key K --delay D --gap G`: prints the base URL, serves until stdin
closes (so it never outlives the bench).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import defaultdict
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from tests.fakes.providers.gemini import FakeGemini
from tests.fakes.providers.gemini_stream import ChunkKind, Hold, StreamControl


class PacedStream(StreamControl):
    """Streams think first: the thought parts go out as the answer starts (after the fake's delay),
    the final image `gap` seconds later."""

    def __init__(self, gap: float) -> None:
        super().__init__()
        self.gap = gap

    async def _send(
        self,
        request: web.Request,
        chunks: list[tuple[ChunkKind, dict[str, Any]]],
        holds: list[Hold],
        breaks: list[Any],
    ) -> web.StreamResponse:
        """This stream's own hold on its final image (the shared ones are for tests, one at a time)."""
        gate = asyncio.Event()
        asyncio.get_running_loop().call_later(self.gap, gate.set)
        return await super()._send(request, chunks, [*holds, Hold("image", 1, gate)], breaks)


class RemoteGemini:
    """What a bench session needs of a provider (base URL, timings), served by another process."""

    def __init__(self, api_key: str, *, delay: float, gap: float = 0.0) -> None:
        self.api_key, self.delay, self.gap = api_key, delay, gap
        #: Provider-side times are not measured across the process boundary (overheads read 0).
        self.timings: defaultdict[str, float] = defaultdict(float)
        self.premade: dict[tuple[int, int, str], bytes] = {}
        self.base_url = ""
        self._process: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Self:
        """Start the process and read the address it serves on."""
        argv = [
            "-m",
            "bench.remote",
            "--key",
            self.api_key,
            "--delay",
            str(self.delay),
            "--gap",
            str(self.gap),
        ]
        self._process = await asyncio.create_subprocess_exec(
            sys.executable, *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert self._process.stdout is not None
        line = await asyncio.wait_for(self._process.stdout.readline(), 60)
        if not line.startswith(b"http"):
            raise RuntimeError(f"the remote fake Gemini did not start: {line!r}")
        self.base_url = line.decode().strip()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Close its stdin (it stops) and wait for it."""
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            await asyncio.wait_for(process.wait(), 30)
        except TimeoutError:
            process.kill()
            await process.wait()


async def serve(key: str, delay: float, gap: float) -> None:
    """Serve a fake Gemini until stdin closes."""
    async with FakeGemini(api_key=key) as gemini:
        gemini.delay = delay
        gemini.stream = PacedStream(gap)
        print(gemini.base_url, flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        await reader.read()  # EOF: the bench is done


def main(argv: list[str] | None = None) -> None:
    """The command line of the remote process."""
    parser = argparse.ArgumentParser(prog="python -m bench.remote")
    parser.add_argument("--key", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--gap", type=float, default=0.0)
    args: Any = parser.parse_args(argv)
    asyncio.run(serve(args.key, args.delay, args.gap))


if __name__ == "__main__":
    main()
