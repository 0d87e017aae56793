"""Job ids and contact sheets: codes round-trip, and each cell of a sheet shows its own image."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageStat

from bot.imaging.sheet import (
    BACKGROUND,
    MISSING,
    PER_PAGE,
    THUMB,
    TILE,
    SheetCell,
    draw_sheet,
    make_thumbnail,
    sheet_size,
    thumb_box,
)
from bot.jobs.ids import job_code, turn_id_of
from tests.fakes.imagegen import make_image


def centre_colour(sheet: Image.Image, index: int) -> tuple[int, ...]:
    """The average colour of the middle half of cell `index`'s thumbnail (clear of the number badge)."""
    left, top, right, bottom = thumb_box(index)
    quarter = THUMB // 4
    crop = sheet.crop((left + quarter, top + quarter, right - quarter, bottom - quarter))
    return tuple(round(v) for v in ImageStat.Stat(crop).mean)


def test_job_codes_are_base_36_and_round_trip() -> None:
    assert job_code(1) == "1"
    assert job_code(35) == "Z"
    assert job_code(36) == "10"
    assert job_code(int("3F9K", 36)) == "3F9K"
    for turn_id in (1, 7, 36**3 + 5, 2**40, 2**63 - 1):
        code = job_code(turn_id)
        assert turn_id_of(code) == turn_id
        assert turn_id_of(code.lower()) == turn_id
        assert turn_id_of(f" #{code} ") == turn_id


@pytest.mark.parametrize("text", ["", "   ", "0", "3F-9K", "ÄB", "ZZZZZZZZZZZZZZ", "a lighthouse"])
def test_text_that_is_no_job_code_names_no_turn(text: str) -> None:
    assert turn_id_of(text) is None


def test_job_code_refuses_what_is_no_turn_id() -> None:
    with pytest.raises(ValueError):
        job_code(0)


def test_each_cell_shows_its_image_in_order_and_a_gone_file_is_a_grey_tile() -> None:
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (220, 220, 40), (240, 240, 240)]
    images = [make_image(512, 512, "PNG", color=c) for c in colours]
    cells = [SheetCell(n, f"C{n}", f"prompt {n}", make_thumbnail(data)) for n, data in enumerate(images, 1)]
    cells.append(SheetCell(6, "GONE", "a file that was pruned", make_thumbnail(None)))
    png = draw_sheet(cells)
    with Image.open(io.BytesIO(png)) as opened:
        assert opened.format == "PNG"
        sheet = opened.convert("RGB")
    assert sheet.size == sheet_size(6)
    for index, colour in enumerate(colours):
        assert centre_colour(sheet, index) == colour
    assert centre_colour(sheet, 5) == MISSING
    # An opaque background (no transparency for a theme to show through) where no cell is.
    assert sheet.getpixel((sheet.width - 2, sheet.height - 2)) == BACKGROUND


def test_a_wide_image_is_letterboxed_and_a_jpeg_is_read_too() -> None:
    wide = make_image(800, 400, "JPEG", color=(10, 120, 250))
    thumb = make_thumbnail(wide)
    assert thumb is not None and thumb.size == (THUMB, THUMB // 2)
    sheet = Image.open(io.BytesIO(draw_sheet([SheetCell(1, "1", "wide", thumb)]))).convert("RGB")
    left, top, *_ = thumb_box(0)
    assert sheet.getpixel((left + THUMB // 2, top + 5)) == TILE  # the band above the image
    middle = sheet.getpixel((left + THUMB // 2, top + THUMB // 2))
    assert isinstance(middle, tuple)
    assert all(abs(a - b) <= 3 for a, b in zip(middle, (10, 120, 250), strict=True))


def test_bytes_that_are_no_image_make_a_grey_tile_and_a_page_has_at_most_twelve() -> None:
    assert make_thumbnail(b"not an image") is None
    cell = SheetCell(1, "X", "", None)
    with pytest.raises(ValueError):
        draw_sheet([cell] * (PER_PAGE + 1))


class CountingFont:
    """A font whose every glyph is 7 px wide, counting how often a line is measured."""

    def __init__(self) -> None:
        self.measured = 0

    def getlength(self, text: str) -> float:
        self.measured += 1
        return 7.0 * len(text)


def test_a_long_prompts_caption_is_cut_to_fit_in_a_few_measures() -> None:
    from bot.imaging.sheet import _fitted

    font = CountingFont()
    line = _fitted("a lighthouse at dusk, " * 400, font, 300)  # type: ignore[arg-type]
    assert line.endswith("…") and font.getlength(line) <= 300 and len(line) == 300 // 7
    assert font.measured <= 12  # a bisection over at most 120 characters, not one per character
    assert _fitted("short   prompt", CountingFont(), 300) == "short prompt"  # type: ignore[arg-type]
