"""Big request bodies go out in slices, each written once the socket has taken the one before.

Handed to aiohttp whole, a 17 MB body is one `transport.write`: Python 3.11's socket transport then
moves its whole remaining buffer after every partial send, which is quadratic in the body's size and
stalled the event loop for over 100 ms per 14-reference request. Written in slices with aiohttp's
back-pressure (it drains the transport between writes), the buffer never holds more than a slice.
aiohttp has no option for this, hence this module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

#: Bodies up to this size are sent as they are (one write is cheap).
WHOLE_UP_TO = 1024 * 1024
#: The size of each slice of a bigger body.
SLICE = 256 * 1024


def sliced(body: bytes) -> bytes | AsyncIterator[memoryview]:
    """The body as aiohttp should send it: whole when small, else slice by slice (a fresh iterator
    on every call, so a retried request sends it again from the start)."""
    if len(body) <= WHOLE_UP_TO:
        return body

    async def slices() -> AsyncIterator[memoryview]:
        view = memoryview(body)
        for start in range(0, len(body), SLICE):
            yield view[start : start + SLICE]

    return slices()


def with_length(headers: Mapping[str, str] | None, body: bytes) -> dict[str, str]:
    """Headers with the body's Content-Length, so that slices are not sent chunked."""
    return {**(headers or {}), "Content-Length": str(len(body))}
