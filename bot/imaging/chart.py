"""Usage charts: credits per day as stacked bars (spent, then reserved on top), a limit line and a
running total, in one or more panels under a title and a legend.

Pure Pillow work from a small data object to PNG bytes: callers run draw_chart in the image pool.
Drawn on an opaque dark background with light text and saturated colours, so the chart reads the
same on Discord's dark and light themes. Every word on it comes from the caller (the catalogue).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from PIL import Image, ImageDraw, ImageFont

from bot.imaging.fonts import BUNDLED, Font, font_at, font_face

Colour = tuple[int, int, int]

WIDTH = 960
MARGIN = 24
#: Room for the y-axis values, left of each plot.
AXIS = 64
#: The title and the legend above the first panel.
HEADER = 92
#: One panel: its title, the plot, the day labels under it and the gap after it.
PANEL_TITLE, PLOT, DAY_LABELS, PANEL_GAP = 30, 200, 26, 18
PANEL = PANEL_TITLE + PLOT + DAY_LABELS + PANEL_GAP
#: A bar's share of its column, and its widest (a window of one day is one column).
BAR_SHARE, BAR_MAX = 0.7, 56
#: At most this many day labels under a plot (the rest are skipped evenly).
MAX_DAY_LABELS = 16

BACKGROUND: Colour = (30, 31, 34)
TEXT: Colour = (242, 243, 245)
MUTED: Colour = (185, 187, 190)
GRID: Colour = (64, 66, 73)
SPENT: Colour = (88, 101, 242)
RESERVED: Colour = (250, 204, 21)
LIMIT: Colour = (242, 63, 66)
RUNNING: Colour = (87, 242, 135)
TITLE_SIZE, LABEL_SIZE, SMALL_SIZE = 22, 16, 13


@dataclass(frozen=True, slots=True)
class Day:
    """One day's bar: credits spent (committed) and reserved (held by jobs in flight), in cents."""

    day: date
    spent: int
    reserved: int
    #: What the axis says under the bar: the day ("3"), and with its month ("6/3") where the month
    #: changes or the labels start.
    label: str
    long_label: str = ""

    @property
    def total(self) -> int:
        """The bar's full height in cents."""
        return self.spent + self.reserved


@dataclass(frozen=True, slots=True)
class Panel:
    """One plot: a bar per day, oldest first, with an optional limit line and running total."""

    title: str
    days: tuple[Day, ...]
    #: The limit in cents, drawn as a horizontal line (None: no line).
    limit: int | None = None
    #: Draw the running total (a window longer than a day: its limit is on the total, not a day).
    running: bool = False


@dataclass(frozen=True, slots=True)
class Labels:
    """The legend's words and the y axis's unit."""

    spent: str
    reserved: str
    limit: str
    running: str
    unit: str
    #: How the language writes the decimal point of the axis's amounts ("2,5" in Spanish).
    decimal: str = "."


@dataclass(frozen=True, slots=True)
class Chart:
    """A whole picture: a title, a legend and its panels, top to bottom."""

    title: str
    panels: tuple[Panel, ...]
    labels: Labels


@dataclass(frozen=True, slots=True)
class Geometry:
    """Where a panel's plot is, the value its top stands for, and each day's bar (left, right)."""

    plot: tuple[int, int, int, int]
    top_cents: int
    bars: tuple[tuple[int, int], ...]


def running_totals(days: Sequence[Day]) -> list[int]:
    """The total so far at the end of each day, in cents."""
    totals, so_far = [], 0
    for day in days:
        so_far += day.total
        totals.append(so_far)
    return totals


def nice_ceiling(cents: int) -> int:
    """The smallest 1, 2, 2.5 or 5 × 10ⁿ credits at or above `cents` (at least one credit)."""
    value = max(cents, 100)
    power = 10 ** (len(str(value)) - 1)  # exact, unlike a float logarithm
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return int(step * power)
    return 10 * power


def scale_of(panel: Panel) -> int:
    """The value in cents the top of the panel's plot stands for: room for every bar, the limit and
    the running total."""
    highest = max((day.total for day in panel.days), default=0)
    if panel.running:
        highest = max(highest, *running_totals(panel.days), 0)
    if panel.limit is not None:
        highest = max(highest, panel.limit)
    return nice_ceiling(highest)


def bar_height(cents: int, top_cents: int) -> int:
    """Pixels of a value on a plot whose top is `top_cents`; a value above zero is at least a pixel."""
    if cents <= 0:
        return 0
    return max(1, round(cents / top_cents * PLOT))


def chart_size(chart: Chart) -> tuple[int, int]:
    """The picture's pixel size."""
    return WIDTH, HEADER + len(chart.panels) * PANEL


def layout(chart: Chart) -> list[Geometry]:
    """Each panel's plot box, scale and bar positions (what tests read the pixels back with)."""
    found = []
    left, right = MARGIN + AXIS, WIDTH - MARGIN
    for index, panel in enumerate(chart.panels):
        top = HEADER + index * PANEL + PANEL_TITLE
        count = max(1, len(panel.days))
        column = (right - left) / count
        width = max(1, min(BAR_MAX, int(column * BAR_SHARE)))
        bars = []
        for number in range(len(panel.days)):
            centre = left + column * (number + 0.5)
            bars.append((round(centre - width / 2), round(centre - width / 2) + width))
        found.append(Geometry((left, top, right, top + PLOT), scale_of(panel), tuple(bars)))
    return found


def drawable(texts: Sequence[str]) -> bool:
    """Whether some font on this machine draws all these texts (else show them in English)."""
    return font_face(texts) is not None


def texts_of(chart: Chart) -> list[str]:
    """Every word and number the chart shows."""
    labels = chart.labels
    words = [chart.title, labels.spent, labels.reserved, labels.limit, labels.running, labels.unit]
    for panel in chart.panels:
        words += [panel.title, *(f"{day.label}{day.long_label}" for day in panel.days), "0123456789."]
    return words


class _Pen:
    """Draws text in one face (the chart's), at any size."""

    def __init__(self, draw: ImageDraw.ImageDraw, face: str) -> None:
        self.draw = draw
        self.face = face

    def font(self, size: int) -> Font:
        """The face at a size (the bundled font if the face went missing meanwhile)."""
        return font_at(self.face, size) or ImageFont.load_default(size=size)

    def width(self, text: str, size: int) -> float:
        """The text's width in pixels."""
        return float(self.font(size).getlength(text))

    def text(self, xy: tuple[float, float], text: str, size: int, fill: Colour) -> float:
        """Draw text; its width in pixels."""
        self.draw.text(xy, text, fill=fill, font=self.font(size))
        return self.width(text, size)


def _amount(cents: int, decimal: str = ".") -> str:
    """Cents as a credit amount on an axis ("2.5", "40"; "2,5" with a decimal comma)."""
    return format((Decimal(cents) / 100).normalize(), "f").replace(".", decimal)  # exact: never 1e+06


def _legend(pen: _Pen, chart: Chart) -> None:
    """Swatches for spent and reserved, line samples for the limit and the running total."""
    x, y = float(MARGIN), 56.0
    items: list[tuple[str, Colour, bool]] = [
        (chart.labels.spent, SPENT, False),
        (chart.labels.reserved, RESERVED, False),
    ]
    if any(panel.limit is not None for panel in chart.panels):
        items.append((chart.labels.limit, LIMIT, True))
    if any(panel.running for panel in chart.panels):
        items.append((chart.labels.running, RUNNING, True))
    for label, colour, line in items:
        if line:
            pen.draw.line((x, y + 10, x + 22, y + 10), fill=colour, width=3)
        else:
            pen.draw.rectangle((x + 3, y + 2, x + 19, y + 18), fill=colour)
        x += 30 + pen.text((x + 28, y), label, LABEL_SIZE, TEXT) + 22


def _axis(pen: _Pen, geometry: Geometry, labels: Labels) -> None:
    """Grid lines at the top, middle and bottom of a plot, their values, and the unit above it."""
    left, top, right, bottom = geometry.plot
    for share in (1.0, 0.5, 0.0):
        y = bottom - round(share * PLOT)
        pen.draw.line((left, y, right - 1, y), fill=GRID if share else MUTED, width=1)
        value = _amount(round(geometry.top_cents * share), labels.decimal)
        pen.text((left - 8 - pen.width(value, SMALL_SIZE), y - 8), value, SMALL_SIZE, MUTED)
    pen.text((right - pen.width(labels.unit, SMALL_SIZE), top - 20), labels.unit, SMALL_SIZE, MUTED)


def _day_labels(pen: _Pen, panel: Panel, geometry: Geometry) -> None:
    """Day labels under the bars: every one, or evenly skipped counting back from the last (today);
    the first shown and each one in a new month name the month too."""
    count = len(panel.days)
    every = max(1, math.ceil(count / MAX_DAY_LABELS))
    shown = sorted(range(count - 1, -1, -every))
    bottom = geometry.plot[3]
    for place, number in enumerate(shown):
        day = panel.days[number]
        new_month = place == 0 or panel.days[shown[place - 1]].day.month != day.day.month
        label = (day.long_label or day.label) if new_month else day.label
        x0, x1 = geometry.bars[number]
        pen.text(((x0 + x1) / 2 - pen.width(label, SMALL_SIZE) / 2, bottom + 6), label, SMALL_SIZE, MUTED)


def _running(draw: ImageDraw.ImageDraw, panel: Panel, geometry: Geometry) -> None:
    """The running total as a line through each day's column, with a dot per day."""
    bottom = geometry.plot[3]
    points = [
        ((x0 + x1) / 2, bottom - bar_height(total, geometry.top_cents))
        for total, (x0, x1) in zip(running_totals(panel.days), geometry.bars, strict=True)
    ]
    if len(points) > 1:
        draw.line(points, fill=RUNNING, width=3, joint="curve")
    for x, y in points:
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=RUNNING)


def _bars(draw: ImageDraw.ImageDraw, panel: Panel, geometry: Geometry) -> None:
    """Each day's spent bar, and its reserved part stacked on top; a day of nothing has no bar."""
    bottom = geometry.plot[3]
    for day, (x0, x1) in zip(panel.days, geometry.bars, strict=True):
        spent = bar_height(day.spent, geometry.top_cents)
        total = max(spent, bar_height(day.total, geometry.top_cents))
        if day.reserved and total == spent:
            total = spent + 1  # a reservation never disappears under rounding
        if spent:
            draw.rectangle((x0, bottom - spent, x1 - 1, bottom - 1), fill=SPENT)
        if total > spent:
            draw.rectangle((x0, bottom - total, x1 - 1, bottom - spent - 1), fill=RESERVED)


def _limit(draw: ImageDraw.ImageDraw, limit: int, geometry: Geometry) -> None:
    """The limit as a dashed line across the plot."""
    left, _, right, bottom = geometry.plot
    y = bottom - round(limit / geometry.top_cents * PLOT)
    for x in range(left, right, 14):
        draw.line((x, y, min(x + 8, right - 1), y), fill=LIMIT, width=3)


def _panel(pen: _Pen, chart: Chart, panel: Panel, geometry: Geometry) -> None:
    """One panel: its title, axis, running total behind the bars, the bars, then the limit on top."""
    left, top, _, _ = geometry.plot
    pen.text((left, top - PANEL_TITLE + 4), panel.title, LABEL_SIZE, TEXT)
    _axis(pen, geometry, chart.labels)
    if panel.running:
        _running(pen.draw, panel, geometry)
    _bars(pen.draw, panel, geometry)
    if panel.limit is not None:
        _limit(pen.draw, panel.limit, geometry)
    _day_labels(pen, panel, geometry)


def draw_chart(chart: Chart) -> bytes:
    """The chart as PNG bytes, every word in one face (the bundled one if none draws them all)."""
    image = Image.new("RGB", chart_size(chart), BACKGROUND)
    pen = _Pen(ImageDraw.Draw(image), font_face(texts_of(chart)) or BUNDLED)
    pen.text((MARGIN, 18), chart.title, TITLE_SIZE, TEXT)
    _legend(pen, chart)
    for panel, geometry in zip(chart.panels, layout(chart), strict=True):
        _panel(pen, chart, panel, geometry)
    out = io.BytesIO()
    image.save(out, "PNG", optimize=False, compress_level=6)
    return out.getvalue()
