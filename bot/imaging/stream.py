"""Results that decode while they arrive, and the memory that results in flight may hold.

A 4K PNG takes about as long to decode as to download: when a result is known to need a re-encode
(its announced size is over the upload limit) and a core is free, its bytes are fed to a decoder as
they arrive, so the fit starts with the pixels ready. A job's `Intake` (set by the pipeline for the
duration of its provider call and fit, read by the HTTP client) says which results need that, keeps
what was decoded, and holds the job's share of the result-bytes budget, so fifty 4K jobs at once
hold a few bodies in memory, not fifty.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import contextvars
import functools
import io
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, cast

from bot.imaging.codec import Decoded, decode_file
from bot.imaging.fit import FIT_MAX_PIXELS
from bot.imaging.header import sniff_mime
from bot.imaging.pool import claim_stream

log = logging.getLogger(__name__)

#: Formats whose Pillow decoder reads as the bytes come (WebP, GIF and BMP are read whole first).
STREAMED_MIMES = frozenset({"image/png", "image/jpeg"})
#: Bytes to wait for before the format is sniffed and a decoder started.
HEAD_BYTES = 4096
#: A decoder left without bytes this long gives up (the download has its own, shorter timeout).
STALL_SECONDS = 300.0

_intake: contextvars.ContextVar[Intake | None] = contextvars.ContextVar("nanobot_intake", default=None)


class StreamAborted(OSError):
    """The bytes stopped coming: the download failed, was cut short or was cancelled."""


class Feed(io.RawIOBase):
    """A read-only file whose bytes are appended by the event loop and read by a decoder thread.

    read() blocks until the bytes asked for have arrived (or the end, or an abort); the chunks are
    the download's own bytes objects, so feeding copies nothing.
    """

    def __init__(self) -> None:
        super().__init__()
        self._chunks: list[bytes] = []
        self._starts: list[int] = []
        self._size = 0
        self._pos = 0
        self._ended = False
        self._error: BaseException | None = None
        self._ready = threading.Condition()

    def put(self, chunk: bytes) -> None:
        """Append bytes (event loop side)."""
        if chunk:
            with self._ready:
                self._starts.append(self._size)
                self._chunks.append(chunk)
                self._size += len(chunk)
                self._ready.notify_all()

    def end(self) -> None:
        """No more bytes will come: reads past the end return short."""
        with self._ready:
            self._ended = True
            self._ready.notify_all()

    def abort(self, error: BaseException | None = None) -> None:
        """The bytes will never be complete: every read from now on raises StreamAborted."""
        with self._ready:
            self._error = error or StreamAborted("the image stopped arriving")
            self._ready.notify_all()

    def _wait_for(self, end: int) -> None:
        """Block until end bytes have arrived, the stream ended, or it was aborted."""
        with self._ready:
            while self._error is None and self._size < end and not self._ended:
                if not self._ready.wait(STALL_SECONDS):
                    self._error = StreamAborted(f"no bytes for {STALL_SECONDS:.0f} s")
            if self._error is not None:
                raise StreamAborted(str(self._error)) from self._error

    def readable(self) -> bool:
        """Readable."""
        return True

    def seekable(self) -> bool:
        """Seekable (within what has arrived; further seeks wait for the bytes)."""
        return True

    def tell(self) -> int:
        """The read position."""
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move the read position; from the end it waits for the end."""
        if whence == io.SEEK_END:
            self._wait_for(1 << 62)
            offset += self._size
        elif whence == io.SEEK_CUR:
            offset += self._pos
        self._pos = max(0, offset)
        return self._pos

    def read(self, size: int | None = -1) -> bytes:
        """Up to size bytes from the position (all the rest when size < 0), waiting for them."""
        end = 1 << 62 if size is None or size < 0 else self._pos + size
        self._wait_for(end)
        with self._ready:
            end = min(end, self._size)
            if end <= self._pos:
                return b""
            first = bisect.bisect_right(self._starts, self._pos) - 1
            pieces: list[memoryview] = []
            at = self._pos
            for index in range(first, len(self._chunks)):
                start = self._starts[index]
                if start >= end:
                    break
                chunk = self._chunks[index]
                pieces.append(memoryview(chunk)[at - start : min(len(chunk), end - start)])
                at = start + len(chunk)
        self._pos = end
        return pieces[0].tobytes() if len(pieces) == 1 else b"".join(pieces)

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        """read() into a buffer."""
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@functools.cache
def stream_pool() -> ThreadPoolExecutor:
    """The thread streamed decodes run in (one at a time: claim_stream() says when one may start)."""
    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="nanobot-stream")


class StreamDecode:
    """One result decoding as its bytes arrive; `future` holds the Decoded (or the decode's error)."""

    def __init__(self, head: bytes, name: str, release: Callable[[], None]) -> None:
        self.feed = Feed()
        self.feed.put(head)
        self.body: bytes | None = None
        source = cast(IO[bytes], self.feed)  # a RawIOBase: Pillow needs only read, seek and tell
        work = functools.partial(decode_file, source, head, name, FIT_MAX_PIXELS)
        self.future: Future[Decoded] = stream_pool().submit(contextvars.copy_context().run, work)
        self.future.add_done_callback(lambda _: release())

    def finish(self, body: bytes) -> None:
        """Every byte has arrived: body is them, joined."""
        self.body = body
        self.feed.end()

    def abort(self) -> None:
        """The download failed: the decoder stops at its next read."""
        self.feed.abort()
        self.future.cancel()  # when it has not started yet


class Arrival:
    """One result's bytes as they arrive, in order; fed to a streamed decode once one has started."""

    def __init__(self, intake: Intake | None, announced: int | None) -> None:
        self.intake = intake
        self.announced = announced
        self.chunks: list[bytes] = []
        self.size = 0
        self.decode: StreamDecode | None = None

    def add(self, chunk: bytes) -> None:
        """Keep a chunk and feed it to the decode."""
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.decode is not None:
            self.decode.feed.put(chunk)
        elif self.intake is not None and self.size >= HEAD_BYTES:
            # Once the format can be sniffed: decode now, or leave it to the fit for good.
            self.decode = self.intake.decoder(b"".join(self.chunks), self.announced)
            self.intake = None

    def abort(self) -> None:
        """The body will not be complete: stop the decode."""
        if self.decode is not None:
            self.decode.abort()

    async def body(self, *, join_off_loop: bool) -> bytes:
        """The whole body (joined in a thread if asked); the decode learns that it is complete."""
        body = await asyncio.to_thread(b"".join, self.chunks) if join_off_loop else b"".join(self.chunks)
        if self.decode is not None:
            self.decode.finish(body)
        return body


class ByteBudget:
    """Bytes of results in flight, shared by every job of a bot; waiters are served in order."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, nbytes: int) -> int:
        """Wait until nbytes (at most the whole budget) fit, and take them; the amount taken."""
        nbytes = min(nbytes, self.limit)
        if not self._waiters and self.used + nbytes <= self.limit:
            self.used += nbytes
            return nbytes
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append((nbytes, waiter))
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.give(nbytes)  # granted just as the wait was cancelled
            else:
                with contextlib.suppress(ValueError):  # _wake may have taken it off the line already
                    self._waiters.remove((nbytes, waiter))
                self._wake()
            raise
        return nbytes

    def force(self, nbytes: int) -> int:
        """Take nbytes without waiting (a job already holding bytes must never wait on itself)."""
        self.used += nbytes
        return nbytes

    def give(self, nbytes: int) -> None:
        """Return bytes taken, and start the waiters that now fit."""
        self.used -= nbytes
        self._wake()

    def _wake(self) -> None:
        """Grant waiters in order while the first one fits."""
        while self._waiters and self.used + self._waiters[0][0] <= self.limit:
            nbytes, waiter = self._waiters.popleft()
            if not waiter.done():
                self.used += nbytes
                waiter.set_result(None)


class Intake:
    """One job's results coming in: the budget it holds, and the decodes started as they arrived."""

    def __init__(self, budget: ByteBudget | None, decode_over: int | None) -> None:
        self.budget = budget
        self.decode_over = decode_over
        self.held = 0
        self.decodes: list[StreamDecode] = []
        self._first = asyncio.Lock()

    async def reserve(self, nbytes: int) -> None:
        """Hold nbytes of the budget until the job's fit is done (the first reservation may wait)."""
        if self.budget is None or nbytes <= 0:
            return
        # A job's parallel requests (count > 1, several downloads) queue behind its first one: only
        # that one waits in the budget's line, the others then take their share without waiting.
        # Two requests of one job in the line could each wait for bytes the other job holds.
        async with self._first:
            if self.held:
                self.held += self.budget.force(nbytes)
            else:
                self.held += await self.budget.take(nbytes)

    def decoder(self, head: bytes, announced: int | None) -> StreamDecode | None:
        """A decoder for a result starting with head, when it must be re-encoded and a core is free."""
        if self.decode_over is None or announced is None or announced <= self.decode_over:
            return None
        if sniff_mime(head) not in STREAMED_MIMES:
            return None
        release = claim_stream()
        if release is None:
            return None  # the image lane is busy: the fit decodes it in its turn
        decode = StreamDecode(head, "the image", release)
        self.decodes.append(decode)
        return decode

    async def decoded(self, bodies: Sequence[bytes]) -> list[Decoded | None]:
        """For each body, its streamed decode when one finished well (None: the fit decodes it)."""
        out: list[Decoded | None] = []
        for body in bodies:
            match = next((d for d in self.decodes if d.body is body), None)
            out.append(await _result(match) if match is not None else None)
        return out

    def close(self) -> None:
        """Give the budget back and drop every decode (a decode still running stops at its next read)."""
        for decode in self.decodes:
            if decode.body is None:
                decode.abort()
        self.decodes.clear()
        if self.budget is not None and self.held:
            self.budget.give(self.held)
        self.held = 0


async def _result(decode: StreamDecode) -> Decoded | None:
    """The decode's image, or None when it failed (the fit then decodes the body and reports why)."""
    try:
        return await asyncio.wrap_future(decode.future)
    except Exception as e:  # a decoder's error is the fit's to report, from the whole body
        log.debug("streamed decode failed (%s); the fit decodes the body instead", type(e).__name__)
        return None


@contextlib.contextmanager
def intake(budget: ByteBudget | None, *, decode_over: int | None) -> Iterator[Intake]:
    """The job's Intake for the block (provider call and fit); its budget is given back at the end."""
    current = Intake(budget, decode_over)
    token = _intake.set(current)
    try:
        yield current
    finally:
        _intake.reset(token)
        current.close()


def current_intake() -> Intake | None:
    """The running job's Intake (None outside a job: the command line, checks)."""
    return _intake.get()
