"""Usage charts: read back from the PNG's pixels, each bar is as tall as its day's credits (spent,
with the reserved part stacked on top), a day of nothing has no bar, and the limit and the running
total are drawn where their values say; the CSV export quotes what a spreadsheet would run."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest
from PIL import Image

from bot.billing.reports import COLUMNS, JobLine, audit_csv
from bot.imaging.chart import (
    BACKGROUND,
    LIMIT,
    PLOT,
    RESERVED,
    RUNNING,
    SPENT,
    Chart,
    Day,
    Geometry,
    Labels,
    Panel,
    draw_chart,
    drawable,
    font_face,
    layout,
    nice_ceiling,
)

LABELS = Labels("Spent", "Reserved", "Limit", "Running total", "credits")
TODAY = date(2025, 6, 12)  # a Thursday


def days(values: list[tuple[int, int]]) -> tuple[Day, ...]:
    """Bars ending today, oldest first, from (spent, reserved) cents."""
    first = TODAY - timedelta(days=len(values) - 1)
    return tuple(
        Day(first + timedelta(days=n), spent, held, str((first + timedelta(days=n)).day))
        for n, (spent, held) in enumerate(values)
    )


def picture(chart: Chart) -> Image.Image:
    with Image.open(io.BytesIO(draw_chart(chart))) as image:
        assert image.format == "PNG" and image.mode == "RGB"  # opaque: its own background
        return image.copy()


def column(image: Image.Image, geometry: Geometry, index: int) -> list[tuple[int, int, int]]:
    """The pixels of a bar's middle column, from the plot's bottom up to its top."""
    x0, x1 = geometry.bars[index]
    _, top, _, bottom = geometry.plot
    x = (x0 + x1) // 2
    return [image.getpixel((x, y)) for y in range(bottom - 1, top - 1, -1)]  # type: ignore[misc]


def run(pixels: list[tuple[int, int, int]], colour: tuple[int, int, int], start: int = 0) -> int:
    """How many pixels from `start` on are `colour`, without a break."""
    count = 0
    while start + count < len(pixels) and pixels[start + count] == colour:
        count += 1
    return count


def measured(image: Image.Image, geometry: Geometry, index: int) -> tuple[int, int]:
    """(spent, reserved) pixel heights of a bar, read from its column."""
    pixels = column(image, geometry, index)
    spent = run(pixels, SPENT)
    return spent, run(pixels, RESERVED, spent)


def test_bars_are_as_tall_as_their_credits_and_a_day_of_nothing_has_none() -> None:
    values = [(0, 0), (100, 0), (250, 0), (0, 0), (400, 150), (1000, 0), (0, 300)]
    chart = Chart("Credits per day", (Panel("Last 7 days", days(values)),), LABELS)
    image = picture(chart)
    [geometry] = layout(chart)
    assert geometry.top_cents == 1000  # the tallest bar fills the plot
    for index, (spent, held) in enumerate(values):
        got_spent, got_held = measured(image, geometry, index)
        assert abs(got_spent - spent / 1000 * PLOT) <= 1, (index, got_spent)
        assert abs(got_held - held / 1000 * PLOT) <= 1, (index, got_held)
        if spent == held == 0:
            assert got_spent == got_held == 0
            column_pixels = column(image, geometry, index)
            assert SPENT not in column_pixels and RESERVED not in column_pixels
    # Proportional to each other: 1000 is ten times 100, 250 two and a half times.
    heights = [measured(image, geometry, n)[0] for n in (1, 2, 5)]
    assert heights == [round(PLOT / 10), round(PLOT / 4), PLOT]


def test_the_limit_is_a_line_at_its_value_and_sets_the_scale() -> None:
    values = [(100, 0), (300, 0), (0, 0)]
    chart = Chart("x", (Panel("Today", days(values), limit=1500),), LABELS)
    image = picture(chart)
    [geometry] = layout(chart)
    assert geometry.top_cents == 2000  # room for the limit: 15 credits on a 20-credit scale
    left, _, right, bottom = geometry.plot
    y = bottom - round(1500 / 2000 * PLOT)
    row = [image.getpixel((x, y)) for x in range(left, right)]
    assert row.count(LIMIT) > (right - left) / 2  # dashed, across the plot
    assert measured(image, geometry, 1)[0] == round(300 / 2000 * PLOT)


def test_a_week_shows_its_running_total_against_the_limit() -> None:
    values = [(200, 0), (0, 0), (500, 100)]
    chart = Chart("x", (Panel("This week", days(values), limit=2000, running=True),), LABELS)
    image = picture(chart)
    [geometry] = layout(chart)
    bottom = geometry.plot[3]
    totals = [200, 200, 800]
    for index, total in enumerate(totals):
        x0, x1 = geometry.bars[index]
        y = bottom - round(total / geometry.top_cents * PLOT)
        above = [image.getpixel(((x0 + x1) // 2, y - dy)) for dy in range(0, 4)]
        assert RUNNING in above, (index, above)  # the dot of that day's running total
    spent, total = round(500 / 2000 * PLOT), round(600 / 2000 * PLOT)
    assert measured(image, geometry, 2) == (spent, total - spent)  # the running line stays behind


def test_every_panel_has_its_own_scale_and_the_picture_its_own_background() -> None:
    small = days([(100, 0), (200, 0)])
    big = days([(5000, 0), (10000, 0)])
    chart = Chart("x", (Panel("a", small), Panel("b", big)), LABELS)
    image = picture(chart)
    first, second = layout(chart)
    assert (first.top_cents, second.top_cents) == (200, 10000)
    assert measured(image, first, 1)[0] == measured(image, second, 1)[0] == PLOT
    assert (
        image.getpixel((2, 2)) == BACKGROUND
        and image.getpixel((image.width - 2, image.height - 2)) == BACKGROUND
    )


@pytest.mark.parametrize(
    ("cents", "ceiling"),
    [(0, 100), (99, 100), (101, 200), (240, 250), (251, 500), (999, 1000), (12001, 20000)],
)
def test_the_scale_is_a_round_number(cents: int, ceiling: int) -> None:
    assert nice_ceiling(cents) == ceiling


def test_words_are_drawn_only_in_a_font_that_has_their_letters() -> None:
    assert drawable(["Spent", "Reserved"])
    assert font_face(["Spent"]) == ""  # Pillow's own font has plain Latin letters
    assert not drawable(["\U0010fffd"])  # nothing draws a private-use character


def line(audit_id: int, prompt: str, status: str = "committed", outcome: str | None = "ok") -> JobLine:
    moment = datetime(2025, 6, 12, 14, 5, 9, tzinfo=UTC)
    return JobLine(
        audit_id,
        moment,
        42,
        "imagine",
        "google",
        "gemini-2.5-flash-image",
        150,
        status,
        outcome,
        7,
        prompt,
    )


def test_the_csv_quotes_formulas_and_stops_at_its_size() -> None:
    lines = [
        line(1, '=HYPERLINK("x")'),
        line(2, 'a, "quoted" lamp', "refunded", "SafetyBlocked"),
        line(3, ""),
    ]
    data, written = audit_csv(lines, 10_000)
    assert data.startswith("\ufeff".encode()) and written == 3
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    assert tuple(rows[0]) == COLUMNS
    by_name = [dict(zip(COLUMNS, row, strict=True)) for row in rows[1:]]
    assert by_name[0]["prompt"] == '\'=HYPERLINK("x")'
    assert by_name[0]["time_utc"] == "2025-06-12T14:05:09Z"
    assert (by_name[0]["reserved_credits"], by_name[0]["charged_credits"]) == ("1.5", "1.5")
    assert by_name[1]["prompt"] == 'a, "quoted" lamp' and by_name[1]["charged_credits"] == "0"
    header_only, none = audit_csv(lines, len(data) - 10)
    assert none == 2 and len(header_only) < len(data)


def test_axis_amounts_are_exact_and_written_with_the_languages_decimal_sign() -> None:
    from bot.imaging.chart import _amount

    assert [_amount(250), _amount(250, ","), _amount(4000), _amount(100_000_000)] == [
        "2.5",
        "2,5",
        "40",
        "1000000",
    ]
