"""Magic-byte sniffing and header-only dimensions: pure byte parsing, no Pillow, no decoding."""

from __future__ import annotations

import struct

from bot.i18n import Text

SUPPORTED_MIMES = frozenset({"image/png", "image/jpeg", "image/webp", "image/gif", "image/bmp"})

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"%PDF-", "application/pdf"),
    (b"II*\x00", "image/tiff"),
    (b"MM\x00*", "image/tiff"),
)
# ISO-BMFF brands (the "ftyp" box) that mark a still image rather than a video.
_FTYP_BRANDS: tuple[tuple[frozenset[bytes], str], ...] = (
    (frozenset({b"avif", b"avis"}), "image/avif"),
    (frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"}), "image/heic"),
    (frozenset({b"mif1", b"msf1"}), "image/heif"),
)
# DIB header sizes Pillow's BMP reader understands; anything else starting "BM" is not a bitmap.
_BMP_HEADER_SIZES = frozenset({12, 16, 40, 52, 56, 64, 108, 124})
_HTML_TAGS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<title", b"<meta")
# Start-of-frame markers: every 0xC0-0xCF except DHT (C4), JPG (C8) and DAC (CC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xDA)})

#: The catalogue's name (imaging.kind.<name>) of each format a user may send by mistake.
_KINDS = {
    "image/png": "png",
    "image/jpeg": "jpeg",
    "image/webp": "webp",
    "image/gif": "gif",
    "image/bmp": "bmp",
    "image/svg+xml": "svg",
    "text/html": "html",
    "application/xml": "xml",
    "application/json": "json",
    "application/pdf": "pdf",
    "image/tiff": "tiff",
    "image/heic": "heic",
    "image/heif": "heif",
    "image/avif": "avif",
    "video/mp4": "video",
}


def sniff_mime(data: bytes) -> str | None:
    """Name the format of data by its magic bytes (never by file name), or None if unknown."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if _is_bmp(data):
        return "image/bmp"
    if data[4:8] == b"ftyp":
        return _ftyp_mime(data)
    return _text_mime(data)


def describe_mime(mime: str) -> Text:
    """A short phrase with its article ("an SVG drawing") for a user-facing message."""
    kind = _KINDS.get(mime)
    return Text(f"imaging.kind.{kind}") if kind else Text("imaging.kind.other", mime=mime)


def _is_bmp(data: bytes) -> bool:
    """Whether data starts like a Windows bitmap ("BM" and a known DIB header size)."""
    return len(data) >= 26 and data[:2] == b"BM" and _u32le(data, 14) in _BMP_HEADER_SIZES


def _ftyp_mime(data: bytes) -> str:
    """HEIC/HEIF/AVIF by the ftyp box's major and compatible brands; any other ftyp is a video."""
    box_size = min(max(struct.unpack_from(">I", data, 0)[0], 16), len(data), 256)
    brands = {data[8:12]} | {data[i : i + 4] for i in range(16, box_size - 3, 4)}
    for family, mime in _FTYP_BRANDS:
        if brands & family:
            return mime
    return "video/mp4"


def _text_mime(data: bytes) -> str | None:
    """Recognise SVG, HTML, XML and JSON text so a message can say what was sent instead."""
    head = data[:2048].removeprefix(b"\xef\xbb\xbf").lstrip().lower()
    if head.startswith(b"{") and b'"' in head:
        return "application/json"
    if not head.startswith(b"<"):
        return None
    if b"<svg" in head:
        return "image/svg+xml"
    if any(tag in head for tag in _HTML_TAGS):
        return "text/html"
    if head.startswith((b"<?xml", b"<!doctype")):
        return "application/xml"
    return None


def header_dims(data: bytes, mime: str) -> tuple[int, int] | None:
    """(width, height) read from the raw header of a supported format, or None if unreadable."""
    try:
        if mime == "image/png":
            return _png_dims(data)
        if mime == "image/gif":
            return struct.unpack_from("<HH", data, 6)
        if mime == "image/bmp":
            return _bmp_dims(data)
        if mime == "image/webp":
            return _webp_dims(data)
        if mime == "image/jpeg":
            return _jpeg_dims(data)
    except struct.error:
        return None
    return None


def _png_dims(data: bytes) -> tuple[int, int] | None:
    """Width and height from the IHDR chunk, which the PNG spec requires to come first."""
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return width, height


def _bmp_dims(data: bytes) -> tuple[int, int]:
    """Width and height from the DIB header (OS/2 headers use 16-bit fields; height may be < 0)."""
    if _u32le(data, 14) == 12:
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)
    return abs(width), abs(height)


def _webp_dims(data: bytes) -> tuple[int, int] | None:
    """Canvas size from the first chunk: VP8X (extended), VP8L (lossless) or VP8 (lossy)."""
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        bits = _u32le(data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg_dims(data: bytes) -> tuple[int, int] | None:
    """Walk the marker segments up to the first start-of-frame and read its size."""
    pos = 2
    while pos + 9 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
        elif marker in _JPEG_STANDALONE:
            pos += 2
        elif marker in _JPEG_SOF:
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height
        elif marker == 0xDA:  # start of scan: no frame header before the data
            return None
        else:
            pos += 2 + struct.unpack_from(">H", data, pos + 2)[0]
    return None


def _u32le(data: bytes, offset: int) -> int:
    """Little-endian unsigned 32-bit integer at offset."""
    value: int = struct.unpack_from("<I", data, offset)[0]
    return value
