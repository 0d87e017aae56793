"""Results decoded while they arrive, and the budget of result bytes in flight (bot/imaging/stream.py)."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import Iterator

import pytest
from PIL import Image

from bot.errors import InputError
from bot.imaging import ByteBudget, fit_for_upload, intake
from bot.imaging.codec import Decoded, decode, decode_file
from bot.imaging.fit import FIT_MAX_PIXELS
from bot.imaging.pool import claim_stream, image_pool, run_image
from bot.imaging.stream import HEAD_BYTES, Arrival, Feed, Intake, StreamAborted

CHUNK = 8 * 1024


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    """Save an image to bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def noise(size: tuple[int, int]) -> Image.Image:
    """Incompressible random RGB pixels."""
    return Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3))


def pieces(data: bytes) -> Iterator[bytes]:
    """data in the small pieces a socket delivers."""
    for start in range(0, len(data), CHUNK):
        yield data[start : start + CHUNK]


def fed_by_thread(data: bytes, *, stop_at: int | None = None) -> Feed:
    """A Feed filled piece by piece from another thread while it is read; cut off at stop_at."""
    feed = Feed()

    def produce() -> None:
        sent = 0
        for piece in pieces(data):
            if stop_at is not None and sent >= stop_at:
                feed.abort()
                return
            feed.put(piece)
            sent += len(piece)
        feed.end()

    threading.Thread(target=produce, daemon=True).start()
    return feed


def same(a: Decoded, b: Decoded) -> bool:
    """Whether two decodes hold the same pixels, mode, size, profile and flags."""
    return (a.image.mode, a.image.size, a.icc, a.mime, a.rotated, a.animated) == (
        b.image.mode,
        b.image.size,
        b.icc,
        b.mime,
        b.rotated,
        b.animated,
    ) and a.image.tobytes() == b.image.tobytes()


@pytest.mark.parametrize(
    ("fmt", "mode", "params"),
    [
        ("PNG", "RGB", {"compress_level": 1}),
        ("PNG", "RGBA", {"compress_level": 9}),
        ("JPEG", "RGB", {"quality": 90}),
    ],
)
def test_streamed_decode_equals_whole_body_decode(fmt: str, mode: str, params: dict[str, object]) -> None:
    data = encode(noise((300, 200)).convert(mode), fmt, **params)
    whole = decode(data, "image", FIT_MAX_PIXELS)
    streamed = decode_file(fed_by_thread(data), data[:HEAD_BYTES], "image", FIT_MAX_PIXELS)
    assert same(streamed, whole)


def test_streamed_decode_applies_exif_orientation_like_the_whole_body() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90° clockwise
    data = encode(noise((120, 60)), "JPEG", quality=90, exif=exif.tobytes())
    streamed = decode_file(fed_by_thread(data), data[:HEAD_BYTES], "image", FIT_MAX_PIXELS)
    assert streamed.rotated and streamed.image.size == (60, 120)
    assert same(streamed, decode(data, "image", FIT_MAX_PIXELS))


def test_a_stream_cut_short_is_an_error_not_a_hang() -> None:
    data = encode(noise((300, 300)), "PNG")
    with pytest.raises(InputError, match="truncated or corrupt"):
        decode_file(fed_by_thread(data, stop_at=len(data) // 2), data[:HEAD_BYTES], "image", FIT_MAX_PIXELS)


def test_a_stream_that_ends_early_is_an_error_not_a_hang() -> None:
    data = encode(noise((300, 300)), "PNG")
    short = data[: len(data) // 2]
    with pytest.raises(InputError, match="truncated or corrupt"):
        decode_file(fed_by_thread(short), short[:HEAD_BYTES], "image", FIT_MAX_PIXELS)


def test_feed_reads_across_pieces_and_seeks_back() -> None:
    data = bytes(range(256)) * 200
    feed = fed_by_thread(data)
    assert feed.read(CHUNK + 10) == data[: CHUNK + 10]
    feed.seek(5)
    assert feed.read(3 * CHUNK) == data[5 : 5 + 3 * CHUNK]
    assert feed.read() == data[5 + 3 * CHUNK :]
    assert feed.read(10) == b""
    aborted = Feed()
    aborted.abort()
    with pytest.raises(StreamAborted):
        aborted.read(1)


def test_fit_uses_the_pixels_decoded_while_the_bytes_arrived() -> None:
    data = encode(noise((400, 300)), "PNG", compress_level=0)
    other = decode(encode(Image.new("RGB", (400, 300), (200, 30, 30)), "PNG"), "image", FIT_MAX_PIXELS)
    budget = len(data) // 4
    [fitted] = fit_for_upload([(data, "image/png")], per_file_limit=budget, margin=1024, decoded=[other])
    assert fitted.reencoded
    # The pixels given (a flat red picture) were encoded, not the noise in the bytes.
    out = Image.open(io.BytesIO(fitted.data)).convert("RGB")
    low, high = zip(*out.getextrema(), strict=True)
    assert all(abs(a - b) <= 8 for a, b in zip(low, (200, 30, 30), strict=True))
    assert all(abs(a - b) <= 8 for a, b in zip(high, (200, 30, 30), strict=True))


async def test_a_result_over_the_limit_decodes_while_it_arrives() -> None:
    data = encode(noise((320, 240)), "PNG", compress_level=0)
    with intake(None, decode_over=len(data) // 2) as results:
        arrival = Arrival(results, len(data))
        for piece in pieces(data):
            arrival.add(piece)
        body = await arrival.body(join_off_loop=True)
        assert body == data
        [ready] = await results.decoded([body])
    assert ready is not None and same(ready, decode(data, "image", FIT_MAX_PIXELS))


async def test_no_streamed_decode_for_results_that_fit_or_when_the_pool_is_busy() -> None:
    data = encode(noise((320, 240)), "PNG", compress_level=0)
    with intake(None, decode_over=len(data)) as results:  # fits: passed through, never decoded
        arrival = Arrival(results, len(data))
        for piece in pieces(data):
            arrival.add(piece)
        assert await results.decoded([await arrival.body(join_off_loop=False)]) == [None]
    gate = threading.Event()
    busy = [asyncio.ensure_future(run_image(gate.wait)) for _ in range(image_pool()._max_workers)]
    try:
        await asyncio.sleep(0)
        assert claim_stream() is None  # every worker is taken: the fit decodes it in its turn
    finally:
        gate.set()
        await asyncio.gather(*busy)
    release = claim_stream()
    assert release is not None
    assert claim_stream() is None  # one streamed decode at a time
    release()


async def test_a_failed_download_stops_its_decode() -> None:
    data = encode(noise((320, 240)), "PNG", compress_level=0)
    with intake(None, decode_over=1) as results:
        arrival = Arrival(results, len(data))
        for piece in list(pieces(data))[:4]:
            arrival.add(piece)
        assert arrival.decode is not None
        arrival.abort()
        with pytest.raises((StreamAborted, InputError, asyncio.CancelledError)):
            await asyncio.wrap_future(arrival.decode.future)
    release = claim_stream()
    assert release is not None  # and the stream slot is free again
    release()


async def test_budget_serves_waiters_in_order_and_never_blocks_a_job_on_itself() -> None:
    budget = ByteBudget(100)
    with intake(budget, decode_over=None) as first:
        await first.reserve(60)
        second = asyncio.ensure_future(_reserve_in_intake(budget, 50))
        third = asyncio.ensure_future(_reserve_in_intake(budget, 30))
        await asyncio.sleep(0)
        assert not second.done() and not third.done()  # the third would fit, but waits its turn
        await first.reserve(80)  # the same job's second image: taken at once, over the limit
        assert budget.used == 140
    await asyncio.gather(second, third)
    assert budget.used == 0


async def test_a_cancelled_wait_leaves_the_budget_whole() -> None:
    budget = ByteBudget(100)
    holder = budget.force(100)
    waiter = asyncio.ensure_future(budget.take(50))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    budget.give(holder)
    assert budget.used == 0 and await budget.take(100) == 100


async def _reserve_in_intake(budget: ByteBudget, nbytes: int) -> None:
    """Reserve within a job's intake, then give it back (the intake's end)."""
    with intake(budget, decode_over=None) as results:
        await results.reserve(nbytes)


async def test_jobs_with_several_requests_never_wait_on_each_other_in_the_budget() -> None:
    """Two jobs of two requests each, their requests queued interleaved: only a job's first request
    waits in the budget's line, so neither job ends up waiting for bytes the other holds."""
    budget = ByteBudget(100)
    holder = await budget.take(100)  # another job holds everything for now
    jobs = [Intake(budget, decode_over=None) for _ in range(2)]

    async def job(intake: Intake) -> None:
        await asyncio.gather(intake.reserve(60), intake.reserve(60))  # count=2: two answers
        intake.close()  # fitted and stored: the bytes go back

    running = [asyncio.ensure_future(job(intake)) for intake in jobs]
    for _ in range(20):  # let every request reach the budget (or its job's lock)
        await asyncio.sleep(0)
    assert len(budget._waiters) == 2  # one per job, not four
    budget.give(holder)
    await asyncio.wait_for(asyncio.gather(*running), 5)
    assert budget.used == 0 and not budget._waiters
