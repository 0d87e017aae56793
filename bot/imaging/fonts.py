"""Fonts for the words drawn on pictures (the /usage chart, the /history contact sheet).

Pillow's bundled font (Aileron, no files needed) has plain Latin letters only: no accents, no
Japanese. Text it cannot draw is drawn with the first font on this machine that has every character
(the container image installs DejaVu Sans and Noto Sans CJK); when none has them, the caller decides
(the chart falls back to its English words). Loaded fonts are cached per process: they are read only
in the image pool, never on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from PIL import ImageFont

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

#: Fonts tried, in order, after the bundled one: common Debian/Ubuntu, Alpine and Fedora paths of
#: DejaVu, Noto and IPA fonts.
FONT_FILES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/ipafont-gothic/ipagp.ttf",
    "/usr/share/fonts/truetype/fonts-japanese-gothic.ttf",
)
#: The face of Pillow's bundled font.
BUNDLED = ""
#: A character no font has: what a font draws for a glyph it lacks.
NO_GLYPH = "\U0010fffd"
#: The size glyphs are compared at.
PROBE_SIZE = 16


@cache
def font_at(face: str, size: int) -> Font | None:
    """A face at a size: the bundled font, or a font file (None when it is not on this machine)."""
    if face == BUNDLED:
        return ImageFont.load_default(size=size)
    if not Path(face).is_file():
        return None
    try:
        return ImageFont.truetype(face, size)
    except OSError:
        return None


@cache
def _has_glyph(face: str, char: str) -> bool:
    """Whether the face draws the character as itself, not as its missing-glyph box."""
    font = font_at(face, PROBE_SIZE)
    if font is None:
        return False
    if char.isspace():
        return True
    drawn, missing = font.getmask(char), font.getmask(NO_GLYPH)
    return drawn.size != missing.size or bytes(drawn) != bytes(missing)


def font_face(texts: Sequence[str]) -> str | None:
    """The first face (the bundled font, then FONT_FILES) that draws every character of the texts,
    or None when none on this machine can."""
    chars = set("".join(texts))
    for face in (BUNDLED, *FONT_FILES):
        if all(_has_glyph(face, char) for char in chars):
            return face
    return None


def font_for(text: str, size: int) -> Font:
    """A font that draws the text if this machine has one, else the bundled font (boxes for what it
    lacks, rather than nothing)."""
    return font_at(font_face([text]) or BUNDLED, size) or ImageFont.load_default(size=size)
