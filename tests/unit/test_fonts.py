"""Words on pictures are drawn with a font that has their letters, when this machine has one."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image, ImageFont

from bot.imaging.fonts import BUNDLED, FONT_FILES, font_face, font_for
from bot.imaging.sheet import SheetCell, draw_sheet

DEJAVU = next((face for face in FONT_FILES if "DejaVu" in face and Path(face).is_file()), None)


def test_plain_latin_words_need_no_font_file() -> None:
    assert font_face(["Credits per day 0123456789"]) == BUNDLED


@pytest.mark.skipif(DEJAVU is None, reason="no DejaVu Sans on this machine")
def test_accented_words_get_a_font_with_their_letters() -> None:
    assert font_face(["Créditos por día, añejo"]) == DEJAVU
    font = font_for("Créditos por día", 13)
    assert isinstance(font, ImageFont.FreeTypeFont) and font.path == DEJAVU


def test_a_script_no_font_here_has_falls_back_to_the_bundled_font() -> None:
    text = "\U0001d11e\U00010900"  # a musical symbol and a Phoenician letter: in none of FONT_FILES' faces
    assert font_face([text]) is None
    assert font_for(text, 13) is not None


def test_the_sheet_captions_a_lost_image_in_the_words_it_is_given() -> None:
    cell = SheetCell(1, "3F9K", "a lighthouse", None)
    english, spanish = draw_sheet([cell]), draw_sheet([cell], gone="imagen perdida")
    assert english != spanish  # the caption is the caller's words, not a fixed English one
    assert Image.open(io.BytesIO(spanish)).size == Image.open(io.BytesIO(english)).size
