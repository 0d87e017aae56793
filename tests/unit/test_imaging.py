"""bot.imaging with real images made by Pillow: what a user would see, and what Discord accepts."""

from __future__ import annotations

import asyncio
import io
import os
import struct
import threading
import time
import zlib
from typing import Any

import pytest
from PIL import Image, ImageFile

from bot.errors import ImageTooLarge, InputError
from bot.i18n import catalogue
from bot.imaging import (
    SUPPORTED_MIMES,
    fit_for_upload,
    fit_for_upload_async,
    header,
    image_dims,
    nearest_ratio,
    prepare_input,
    prepare_input_async,
    probe,
    sniff_mime,
    upscale_local,
    upscale_local_async,
)
from bot.imaging.header import describe_mime, header_dims
from bot.imaging.pool import image_workers, run_image
from bot.ui.embeds import error_text

MIB = 1024 * 1024
MARGIN = 64 * 1024
RED, GREEN, BLUE = (220, 20, 20), (20, 200, 20), (20, 20, 220)
SVG = b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'
HTML = b"<!DOCTYPE html>\n<html><head><title>Not found</title></head><body></body></html>"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n"
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(32)
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(32)


def encode(image: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    """Save an image to bytes."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def solid(color: int | tuple[int, ...], size: tuple[int, int] = (64, 48), mode: str = "RGB") -> Image.Image:
    """A one-colour image."""
    return Image.new(mode, size, color)


def noise(size: tuple[int, int], mode: str = "RGB") -> Image.Image:
    """Incompressible random pixels: the worst case for every encoder."""
    return Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))


def noise_png(size: tuple[int, int], mode: str = "RGB") -> bytes:
    """A noisy PNG about as large as its raw pixels."""
    return encode(noise(size, mode), "PNG", compress_level=0)


def decoded(data: bytes) -> Image.Image:
    """Decode bytes the way a Discord client would."""
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixel(image: Image.Image, xy: tuple[int, int], mode: str = "RGB") -> tuple[int, ...]:
    """The pixel at xy as a tuple in mode (RGB by default)."""
    value = image.convert(mode).getpixel(xy)
    assert isinstance(value, tuple)
    return tuple(int(v) for v in value)


def alpha(image: Image.Image, xy: tuple[int, int]) -> int:
    """The alpha value at xy."""
    return pixel(image, xy, "RGBA")[3]


def close(a: tuple[int, ...], b: tuple[int, ...], tolerance: int = 12) -> bool:
    """Whether two colours match within lossy-codec error."""
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


def aspect(width: int, height: int) -> float:
    """Width over height."""
    return width / height


def with_ihdr_size(png: bytes, width: int, height: int) -> bytes:
    """Rewrite a PNG's IHDR size (fixing the CRC) so the header lies about its pixel count."""
    ihdr = bytearray(png[12:29])  # type + 13 data bytes
    struct.pack_into(">II", ihdr, 4, width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(ihdr)))
    return png[:12] + bytes(ihdr) + crc + png[33:]


@pytest.fixture(scope="module")
def big_noise_png() -> bytes:
    """A 4096×4096 noisy PNG (≈48 MB), the worst thing a provider can send back."""
    return noise_png((4096, 4096))


# --- sniffing and probing ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "mime"),
    [
        ("PNG", "image/png"),
        ("JPEG", "image/jpeg"),
        ("WEBP", "image/webp"),
        ("GIF", "image/gif"),
        ("BMP", "image/bmp"),
    ],
)
def test_sniff_and_probe_supported_formats(fmt: str, mime: str) -> None:
    data = encode(solid(RED, (40, 30)), fmt)
    assert sniff_mime(data) == mime
    assert mime in SUPPORTED_MIMES
    info = probe(data)
    assert (info.mime, info.width, info.height) == (mime, 40, 30)
    assert image_dims(data) == (40, 30)


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (SVG, "image/svg+xml"),
        (b"  <svg xmlns='http://www.w3.org/2000/svg'></svg>", "image/svg+xml"),
        (HTML, "text/html"),
        (PDF, "application/pdf"),
        (HEIC, "image/heic"),
        (AVIF, "image/avif"),
        (encode(solid(RED), "TIFF"), "image/tiff"),
        (b'{"error": {"code": 403}}', "application/json"),
        (b"hello, I am plain text", None),
        (b"BM but not a bitmap at all, just text", None),
    ],
)
def test_sniff_names_what_it_is(data: bytes, mime: str | None) -> None:
    assert sniff_mime(data) == mime
    assert mime not in SUPPORTED_MIMES


@pytest.mark.parametrize(
    ("image", "fmt", "params"),
    [
        (solid(RED, (301, 199)), "WEBP", {"lossless": True}),
        (solid((*RED, 128), (301, 199), "RGBA"), "WEBP", {}),
        (solid(RED, (301, 199)), "JPEG", {"progressive": True}),
        (solid(RED, (301, 199)), "JPEG", {"exif": Image.Exif(), "icc_profile": b"x" * 70_000}),
        (solid((*RED, 128), (301, 199), "RGBA"), "BMP", {}),
        (solid(RED, (301, 199)), "GIF", {}),
    ],
)
def test_header_dims_match_pillow(image: Image.Image, fmt: str, params: dict[str, object]) -> None:
    data = encode(image, fmt, **params)
    mime = sniff_mime(data)
    assert mime is not None
    assert header_dims(data, mime) == (301, 199) == decoded(data).size


# --- prepare_input: refusals ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (SVG, "is an SVG drawing"),
        (HTML, "is an HTML page"),
        (PDF, "is a PDF document"),
        (HEIC, "is a HEIC photo"),
        (encode(solid(RED), "TIFF"), "is a TIFF image"),
    ],
)
def test_unsupported_formats_are_named(data: bytes, phrase: str) -> None:
    with pytest.raises(InputError) as info:
        prepare_input(data, name="image.png")
    assert info.value.message == (f"image.png {phrase}, not a supported image (PNG, JPEG, WebP, GIF or BMP)")


@pytest.mark.parametrize(
    ("data", "locale", "said"),
    [
        (
            PDF,
            "es-ES",
            "image.png es un documento PDF, no una imagen compatible (PNG, JPEG, WebP, GIF o BMP)",
        ),
        (SVG, "pt-BR", "image.png é um desenho SVG, não uma imagem compatível (PNG, JPEG, WebP, GIF ou BMP)"),
        (
            HEIC,
            "ja",
            "image.pngはHEIC写真で、対応している画像ではありません（対応形式: PNG、JPEG、WebP、GIF、BMP）",
        ),
        (b"", "es-ES", "image.png no tiene contenido (0 bytes)"),
    ],
)
def test_a_refused_image_is_named_in_the_members_language(data: bytes, locale: str, said: str) -> None:
    with pytest.raises(InputError) as info:
        prepare_input(data, name="image.png")
    assert error_text(info.value, locale)[1] == said


@pytest.mark.parametrize("mime", sorted({*header._KINDS, "application/zip"}))
def test_every_format_a_user_may_send_has_a_name_in_every_language(mime: str) -> None:
    kind = describe_mime(mime)
    assert catalogue().has(kind.key)
    assert len({kind.render(locale) for locale in (None, "es-ES", "pt-BR", "ja")}) == 4


def test_empty_file() -> None:
    with pytest.raises(InputError, match=r"^image\.png is empty \(0 bytes\)$"):
        prepare_input(b"", name="image.png")


def test_non_image_bytes_named_png() -> None:
    with pytest.raises(InputError) as info:
        prepare_input(b"definitely not pixels" * 10, name="image.png")
    assert info.value.message == "image.png is not an image (PNG, JPEG, WebP, GIF or BMP)"
    assert not isinstance(info.value, ImageTooLarge)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP"])
def test_truncated_image_is_refused(fmt: str) -> None:
    whole = encode(noise((256, 256)), fmt)
    with pytest.raises(InputError, match=r"^image\.png looks truncated or corrupt$"):
        prepare_input(whole[: len(whole) // 2], name="image.png")


def test_decompression_bomb_refused_from_header(monkeypatch: pytest.MonkeyPatch) -> None:
    bomb = with_ihdr_size(encode(solid(RED, (8, 8))), 50_000, 50_000)

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    started = time.perf_counter()
    with pytest.raises(ImageTooLarge) as info:
        prepare_input(bomb, name="image.png")
    assert time.perf_counter() - started < 1.0
    assert info.value.message == ("image.png is 50000×50000 pixels; the limit is 64 megapixels")
    assert image_dims(bomb) == (50_000, 50_000)  # probing still works, header only


def test_gif_bomb_refused_from_header() -> None:
    gif = bytearray(encode(solid(RED, (8, 8)), "GIF"))
    struct.pack_into("<HH", gif, 6, 65_535, 65_535)
    with pytest.raises(ImageTooLarge, match="65535×65535 pixels"):
        prepare_input(bytes(gif), name="big.gif")


def test_over_max_bytes() -> None:
    data = noise_png((800, 700))
    with pytest.raises(ImageTooLarge) as info:
        prepare_input(data, name="photo.png", max_bytes=MIB)
    assert info.value.message.startswith("photo.png is 1.6 MB; the limit is 1 MB")


def test_over_max_pixels() -> None:
    data = encode(solid(RED, (400, 300)))
    with pytest.raises(ImageTooLarge, match=r"400×300 pixels; the limit is 0\.1 megapixels"):
        prepare_input(data, max_pixels=100_000)


# --- prepare_input: what comes out ---------------------------------------------------------------


def test_small_png_passes_through_untouched() -> None:
    data = encode(solid(RED, (64, 48)))
    prepared = prepare_input(data)
    assert prepared.data is data
    assert (prepared.mime, prepared.width, prepared.height) == ("image/png", 64, 48)
    assert prepared.reencoded is False


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animated_image_becomes_its_first_frame(fmt: str) -> None:
    frames = [solid(color, (32, 32)) for color in (RED, GREEN, BLUE)]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(decoded(data), "n_frames", 1) == 3
    prepared = prepare_input(data, name="anim")
    assert prepared.reencoded is True
    assert prepared.mime in {"image/png", "image/jpeg", "image/webp"}
    result = decoded(prepared.data)
    assert getattr(result, "n_frames", 1) == 1
    assert close(pixel(result, (16, 16)), RED)


def test_exif_orientation_is_applied_and_dropped() -> None:
    stored = Image.new("RGB", (80, 40), RED)
    stored.paste(BLUE, (40, 0, 80, 40))  # left half red, right half blue as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    prepared = prepare_input(encode(stored, "JPEG", quality=95, exif=exif))
    assert prepared.reencoded is True
    assert (prepared.width, prepared.height) == (40, 80)
    upright = decoded(prepared.data)
    assert upright.size == (40, 80)
    assert close(pixel(upright, (20, 10)), RED)  # the stored left edge is now the top
    assert close(pixel(upright, (20, 70)), BLUE)
    assert upright.getexif().get(0x0112) is None  # viewers must not rotate it a second time


def test_bmp_is_reencoded_to_an_accepted_format() -> None:
    prepared = prepare_input(encode(solid(GREEN, (50, 20)), "BMP"), name="scan.bmp")
    assert prepared.reencoded is True
    assert prepared.mime == "image/jpeg"
    result = decoded(prepared.data)
    assert (result.format, result.size) == ("JPEG", (50, 20))
    assert close(pixel(result, (25, 10)), GREEN)


def test_input_over_max_out_bytes_is_shrunk_to_fit() -> None:
    data = noise_png((900, 600))
    prepared = prepare_input(data, max_out_bytes=250_000)
    assert prepared.reencoded is True
    assert prepared.mime == "image/jpeg"
    assert len(prepared.data) <= 250_000
    result = decoded(prepared.data)
    assert result.size == (prepared.width, prepared.height)
    assert abs(aspect(*result.size) / 1.5 - 1) < 0.005


def test_large_image_is_downscaled_keeping_its_ratio() -> None:
    data = encode(solid(BLUE, (6000, 3000)), "PNG", compress_level=1)
    prepared = prepare_input(data)
    assert (prepared.width, prepared.height) == (4096, 2048)
    result = decoded(prepared.data)
    assert result.size == (4096, 2048)
    assert close(pixel(result, (2000, 1000)), BLUE)


def test_transparent_png_keeps_its_alpha_when_reencoded() -> None:
    image = solid((0, 0, 0, 0), (600, 300), "RGBA")
    image.paste((*RED, 255), (300, 0, 600, 300))
    prepared = prepare_input(encode(image), max_side=300)
    assert (prepared.mime, prepared.width, prepared.height) == ("image/png", 300, 150)
    result = decoded(prepared.data).convert("RGBA")
    assert alpha(result, (10, 75)) == 0
    assert close(pixel(result, (290, 75), "RGBA"), (*RED, 255))


def test_alpha_png_too_big_for_png_goes_webp() -> None:
    image = noise((512, 512), "RGBA")
    image.putalpha(solid(0, (512, 512), "L"))
    image.paste(noise((256, 512), "RGBA").convert("RGB"), (256, 0))
    prepared = prepare_input(encode(image), max_side=400, max_out_bytes=200_000)
    assert prepared.mime == "image/webp"
    assert len(prepared.data) <= 200_000
    result = decoded(prepared.data).convert("RGBA")
    assert alpha(result, (10, 10)) == 0
    assert alpha(result, (390, 10)) == 255


@pytest.mark.parametrize(
    ("image", "fmt", "expected"),
    [
        (solid((0, 255, 255, 0), (300, 200), "CMYK"), "JPEG", (255, 0, 0)),
        (solid(32768, (300, 200), "I;16"), "PNG", (128, 128, 128)),
        (solid(RED, (300, 200)).convert("P"), "PNG", RED),
        (solid(200, (300, 200), "L"), "PNG", (200, 200, 200)),
    ],
)
def test_odd_modes_come_out_as_sane_colour(
    image: Image.Image, fmt: str, expected: tuple[int, int, int]
) -> None:
    prepared = prepare_input(encode(image, fmt), max_side=150)
    assert prepared.reencoded is True
    result = decoded(prepared.data)
    assert result.mode in {"RGB", "RGBA", "L"}
    assert close(pixel(result, (75, 50)), expected, tolerance=16)


# --- fit_for_upload ---------------------------------------------------------------------------


def test_fit_huge_noisy_png_under_the_file_limit(big_noise_png: bytes) -> None:
    started = time.perf_counter()
    [fitted] = fit_for_upload([(big_noise_png, "image/png")])
    elapsed = time.perf_counter() - started
    print(f"fit 4096² noisy PNG ({len(big_noise_png) / MIB:.1f} MiB): {elapsed:.2f} s")
    assert len(fitted.data) <= 10 * MIB - MARGIN
    assert (fitted.mime, fitted.ext, fitted.reencoded) == ("image/jpeg", "jpg", True)
    result = decoded(fitted.data)
    assert result.size == (fitted.width, fitted.height)
    assert result.width == result.height


def test_fit_passes_small_files_through_byte_identical() -> None:
    data = encode(solid(RED, (300, 200)))
    [fitted] = fit_for_upload([(data, "image/png")])
    assert fitted.data is data
    assert (fitted.mime, fitted.ext, fitted.reencoded) == ("image/png", "png", False)
    assert (fitted.width, fitted.height) == (300, 200)


def test_fit_four_8mib_images_share_the_message_budget() -> None:
    sizes = [(2048, 1365), (1365, 2048), (1776, 1574), (2400, 1165)]
    images = [(noise_png(size), "image/png") for size in sizes]
    assert all(len(data) >= 7.9 * MIB for data, _ in images)
    fitted = fit_for_upload(images)
    assert sum(len(f.data) for f in fitted) <= 25 * MIB - MARGIN
    for (data, _), f, (width, height) in zip(images, fitted, sizes, strict=True):
        assert len(f.data) <= 10 * MIB - MARGIN
        result = decoded(f.data)
        assert result.size == (f.width, f.height)
        assert abs(aspect(*result.size) / aspect(width, height) - 1) < 0.005
        assert f.reencoded or f.data is data
    assert any(f.reencoded for f in fitted)


def test_fit_keeps_transparency_as_webp() -> None:
    image = noise((512, 512), "RGB").convert("RGBA")
    image.paste((0, 0, 0, 0), (0, 0, 256, 512))
    data = encode(image, compress_level=0)
    [fitted] = fit_for_upload([(data, "image/png")], per_file_limit=300_000, margin=0)
    assert len(fitted.data) <= 300_000
    assert (fitted.mime, fitted.ext) == ("image/webp", "webp")
    result = decoded(fitted.data).convert("RGBA")
    assert abs(aspect(*result.size) - 1) < 0.005
    assert alpha(result, (5, result.height // 2)) == 0
    assert alpha(result, (result.width - 5, result.height // 2)) == 255


def test_fit_opaque_rgba_goes_jpeg() -> None:
    data = encode(noise((512, 512), "RGB").convert("RGBA"), compress_level=0)
    [fitted] = fit_for_upload([(data, "image/png")], per_file_limit=300_000, margin=0)
    assert fitted.mime == "image/jpeg"
    assert len(fitted.data) <= 300_000


def test_fit_never_upscales() -> None:
    data = noise_png((300, 100))
    [fitted] = fit_for_upload([(data, "image/png")], per_file_limit=40_000, margin=0)
    assert fitted.width <= 300 and fitted.height <= 100
    assert len(fitted.data) <= 40_000
    assert abs(aspect(fitted.width, fitted.height) / 3 - 1) < 0.02


def test_fit_large_image_keeps_its_full_size_when_a_lower_quality_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = noise_png((2048, 1536))
    full_size_saves = count_full_size_saves(monkeypatch, (2048, 1536))
    [fitted] = fit_for_upload([(data, "image/png")], per_file_limit=2_200_000, margin=0)
    assert len(fitted.data) <= 2_200_000
    assert fitted.mime == "image/jpeg"
    assert decoded(fitted.data).size == (2048, 1536)  # no needless downscale
    assert len(full_size_saves) == 1  # a sample picked the quality: the big image is encoded once


@pytest.mark.parametrize("size", [(1536, 2048), (4000, 600)])
def test_fit_image_that_must_shrink_keeps_its_ratio_and_most_of_the_budget(size: tuple[int, int]) -> None:
    data = noise_png(size)
    [fitted] = fit_for_upload([(data, "image/png")], per_file_limit=600_000, margin=0)
    assert 0.6 * 600_000 <= len(fitted.data) <= 600_000  # smaller, but not needlessly so
    result = decoded(fitted.data)
    assert result.size == (fitted.width, fitted.height)
    assert result.width < size[0]
    assert abs(aspect(*result.size) / aspect(*size) - 1) < 0.01


def count_full_size_saves(monkeypatch: pytest.MonkeyPatch, size: tuple[int, int]) -> list[str]:
    """Record the format of every Image.save of an image of this size."""
    saves: list[str] = []
    original = Image.Image.save

    def save(self: Image.Image, fp: Any, format: str | None = None, **params: Any) -> None:
        if self.size == size:
            saves.append(str(format))
        original(self, fp, format, **params)

    monkeypatch.setattr(Image.Image, "save", save)
    return saves


# --- upscale_local ----------------------------------------------------------------------------


@pytest.mark.parametrize("factor", [2, 4])
def test_upscale_opaque_to_jpeg(factor: int) -> None:
    out, mime = upscale_local(encode(solid(GREEN, (120, 80))), factor)
    assert mime == "image/jpeg"
    result = decoded(out)
    assert result.size == (120 * factor, 80 * factor)
    assert close(pixel(result, (60, 40)), GREEN)


def test_upscale_transparent_to_png() -> None:
    image = solid((0, 0, 0, 0), (100, 50), "RGBA")
    image.paste((*BLUE, 255), (50, 0, 100, 50))
    out, mime = upscale_local(encode(image), 4)
    assert mime == "image/png"
    result = decoded(out)
    assert (result.size, result.mode) == ((400, 200), "RGBA")
    assert alpha(result, (10, 100)) == 0


def test_upscale_is_clamped_to_max_side() -> None:
    out, _ = upscale_local(encode(solid(RED, (300, 100))), 4, max_side=1000)
    assert decoded(out).size == (1000, 333)


def test_upscale_refuses_images_already_at_max_side() -> None:
    with pytest.raises(InputError, match="too large to upscale"):
        upscale_local(encode(solid(RED, (1000, 10))), 2, max_side=1000)


# --- nearest_ratio ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((1920, 1080), "16:9"),
        ((1080, 1920), "9:16"),
        ((1000, 1000), "1:1"),
        ((4000, 3000), "4:3"),
        ((3000, 4000), "3:4"),
        ((2100, 900), "21:9"),
        ((5000, 1000), "21:9"),
        ((1500, 1000), "3:2"),
    ],
)
def test_nearest_ratio(size: tuple[int, int], expected: str) -> None:
    ratios = ["1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9"]
    assert nearest_ratio(*size, ratios) == expected


# --- async wrappers ---------------------------------------------------------------------------


async def test_async_fit_keeps_the_event_loop_free(big_noise_png: bytes) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.create_task(ticker())
    try:
        [fitted] = await fit_for_upload_async([(big_noise_png, "image/png")])
    finally:
        task.cancel()
    assert len(fitted.data) <= 10 * MIB - MARGIN
    assert ticks >= 10  # the loop kept running while Pillow worked in a thread


async def test_async_wrappers_return_the_same_results() -> None:
    data = encode(solid(RED, (64, 48)))
    prepared = await prepare_input_async(data, name="a.png")
    assert prepared.data is data
    out, mime = await upscale_local_async(data, 2)
    assert (mime, decoded(out).size) == ("image/jpeg", (128, 96))
    with pytest.raises(InputError, match="is empty"):
        await prepare_input_async(b"", name="a.png")


async def test_reencodes_run_in_the_image_pool_a_few_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    running, peak, threads = 0, 0, set()
    lock = threading.Lock()

    def fake_fit(images: Any, **limits: Any) -> list[Any]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
            threads.add(threading.current_thread().name)
        time.sleep(0.02)
        with lock:
            running -= 1
        return []

    monkeypatch.setattr("bot.imaging.prepare.fit_for_upload", fake_fit)
    big = [(b"x" * 2000, "image/png")]
    await asyncio.gather(*(fit_for_upload_async(big, per_file_limit=1000, margin=0) for _ in range(12)))
    assert 1 <= peak <= image_workers()
    assert all(name.startswith("nanobot-image") for name in threads)


async def test_a_result_that_fits_is_not_queued_behind_reencodes() -> None:
    release = threading.Event()
    # The pool stays busy until released (the wait only bounds a hang): queued behind it, the fit
    # below would never finish, whatever the machine's speed.
    busy = [asyncio.ensure_future(run_image(release.wait, 600)) for _ in range(image_workers())]
    try:
        data = encode(solid(RED, (300, 200)))
        [fitted] = await asyncio.wait_for(fit_for_upload_async([(data, "image/png")]), 60)
        assert fitted.data is data
    finally:
        release.set()
        await asyncio.gather(*busy)
