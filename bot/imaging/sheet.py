"""Contact sheets: a numbered grid of result thumbnails with each job id and prompt snippet beneath.

Drawn on an opaque background with light text, so the sheet reads the same on Discord's dark and
light themes. Pure Pillow work: callers run draw_sheet in the image pool, never on the event loop.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

from bot.imaging.fonts import Font, font_for

log = logging.getLogger(__name__)

COLUMNS, ROWS = 4, 3
PER_PAGE = COLUMNS * ROWS
THUMB = 240
GAP = 14
#: Height of the two caption lines under each thumbnail.
CAPTION = 46
BACKGROUND = (30, 31, 34)
#: Behind a thumbnail whose image is not square (letterboxed).
TILE = (49, 51, 56)
#: A result whose file is gone.
MISSING = (128, 128, 128)
TEXT = (242, 243, 245)
MUTED = (185, 187, 190)
BADGE = (250, 204, 21)
BADGE_TEXT = (20, 20, 20)
CODE_SIZE, SNIPPET_SIZE, BADGE_SIZE = 17, 14, 18
#: Images are decoded no larger than this many pixels (a corrupt header cannot ask for more).
MAX_PIXELS = 80_000_000


@dataclass(frozen=True, slots=True)
class SheetCell:
    """One result on a sheet: its number on the page, job id, prompt, and thumbnail (None: gone)."""

    number: int
    code: str
    prompt: str
    thumb: Image.Image | None


def sheet_size(count: int) -> tuple[int, int]:
    """Pixel size of a sheet of `count` results (as many rows as they fill, at least one)."""
    rows = max(1, min(ROWS, math.ceil(count / COLUMNS)))
    return COLUMNS * THUMB + (COLUMNS + 1) * GAP, rows * (THUMB + CAPTION) + (rows + 1) * GAP


def thumb_box(index: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the thumbnail square of cell `index` (0-based, row by row)."""
    row, column = divmod(index, COLUMNS)
    left = GAP + column * (THUMB + GAP)
    top = GAP + row * (THUMB + CAPTION + GAP)
    return left, top, left + THUMB, top + THUMB


@cache
def _font(size: int) -> Font:
    """Pillow's built-in font at a size (bundled: no font files to install), for digits and job ids."""
    return ImageFont.load_default(size=size)


def make_thumbnail(data: bytes | None) -> Image.Image | None:
    """The image fitted inside the thumbnail square (aspect kept), or None if it cannot be read.

    One image at a time (in the image pool): a page of 4K results is never held decoded at once.
    """
    if data is None:
        return None
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                return None
            image.draft("RGB", (THUMB, THUMB))  # JPEG: decode at a fraction of the size
            return ImageOps.contain(image.convert("RGB"), (THUMB, THUMB), Image.Resampling.LANCZOS)
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        log.warning("a contact-sheet thumbnail could not be read (%s)", type(e).__name__)
        return None


#: The most characters of a prompt a cell's one line can show (the rest is never measured).
SNIPPET_CHARS = 120


def _fitted(text: str, font: Font, width: int) -> str:
    """One line of text, cut with an ellipsis to fit `width` pixels."""
    line = " ".join(text[: SNIPPET_CHARS * 4].split())[:SNIPPET_CHARS]  # a cell never shows more
    if font.getlength(line) <= width and len(line) < SNIPPET_CHARS:
        return line
    low, high = 0, len(line)  # the longest start that fits with its ellipsis (a bisection)
    while low < high:
        middle = (low + high + 1) // 2
        if font.getlength(line[:middle] + "…") <= width:
            low = middle
        else:
            high = middle - 1
    return line[:low].rstrip() + "…"


def _draw_cell(sheet: Image.Image, draw: ImageDraw.ImageDraw, index: int, cell: SheetCell, gone: str) -> None:
    """Thumbnail (or a grey tile saying `gone`), number badge, job id and prompt snippet of one cell."""
    left, top, right, bottom = thumb_box(index)
    thumb = cell.thumb
    if thumb is None:
        draw.rectangle((left, top, right - 1, bottom - 1), fill=MISSING)
        note = gone
        font = font_for(note, SNIPPET_SIZE)
        x = left + (THUMB - font.getlength(note)) / 2
        draw.text((x, bottom - 30), note, fill=BADGE_TEXT, font=font)
    else:
        draw.rectangle((left, top, right - 1, bottom - 1), fill=TILE)
        sheet.paste(thumb, (left + (THUMB - thumb.width) // 2, top + (THUMB - thumb.height) // 2))
    badge_font = _font(BADGE_SIZE)
    number = str(cell.number)
    badge_width = int(badge_font.getlength(number)) + 14
    draw.rounded_rectangle((left + 6, top + 6, left + 6 + badge_width, top + 32), radius=6, fill=BADGE)
    draw.text((left + 13, top + 9), number, fill=BADGE_TEXT, font=badge_font)
    draw.text((left, bottom + 5), cell.code, fill=TEXT, font=_font(CODE_SIZE))
    font = font_for(cell.prompt, SNIPPET_SIZE)  # a Japanese prompt needs a font with its letters
    snippet = _fitted(cell.prompt, font, THUMB)
    draw.text((left, bottom + 26), snippet, fill=MUTED, font=font)


def draw_sheet(cells: Sequence[SheetCell], *, gone: str = "image gone") -> bytes:
    """A PNG contact sheet of up to PER_PAGE results, in order, row by row; `gone` captions a result
    whose image file is gone (the caller's words, in the member's language)."""
    if len(cells) > PER_PAGE:
        raise ValueError(f"a sheet holds at most {PER_PAGE} results, not {len(cells)}")
    sheet = Image.new("RGB", sheet_size(len(cells)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for index, cell in enumerate(cells):
        _draw_cell(sheet, draw, index, cell, gone)
    out = io.BytesIO()
    sheet.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()
