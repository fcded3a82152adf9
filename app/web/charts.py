"""Server-side SVG charts for the admin analytics page: bars, lines, and a stacked share bar.

Each function returns inline SVG markup (``role="img"`` with a title and a
description) drawn with presentation attributes only: no ``style`` attribute,
no ``<style>``, no script, so it renders under the site's Content-Security-Policy
(``style-src 'self'``, no inline script). Every mark carries ``data-label`` and
``data-value`` and a ``<title>`` (the browser's tooltip), so the numbers behind
a picture are one hover, or one query in a test, away.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import count

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 240
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 48
PALETTE = ("#2563eb", "#ea580c", "#16a34a", "#9333ea", "#db2777", "#0891b2", "#ca8a04", "#4b5563")
GRID = "#d1d5db"
INK = "#111827"
MUTED = "#4b5563"
_ids = count(1)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]


def _number(value: float) -> str:
    """Axis and label text: whole numbers plain, others with at most two decimals."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.2f}".rstrip("0").rstrip(".")


def nice_max(value: float) -> float:
    """The axis top: 1, 2, 2.5 or 5 times a power of ten, at or above ``value``."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop always returns


def _open(title: str, description: str, height: int = HEIGHT) -> tuple[list[str], str]:
    uid = f"chart-{next(_ids)}"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" '
        f'class="chart" role="img" aria-labelledby="{uid}-t {uid}-d">',
        f'<title id="{uid}-t">{escape(title)}</title>',
        f'<desc id="{uid}-d">{escape(description)}</desc>',
    ]
    return parts, uid


def _empty(parts: list[str], height: int = HEIGHT) -> Markup:
    parts.append(
        f'<text x="{WIDTH / 2}" y="{height / 2}" text-anchor="middle" fill="{MUTED}" '
        'font-size="14">No data in this range</text></svg>'
    )
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped or numeric


def _axis(parts: list[str], top: float, fmt: Callable[[float], str], height: int) -> None:
    plot_h = height - TOP - BOTTOM
    for i in range(5):
        value = top * i / 4
        y = height - BOTTOM - plot_h * i / 4
        parts.append(
            f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" '
            f'stroke="{GRID}" stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="{MUTED}">{escape(fmt(value))}</text>'
        )


def _x_labels(parts: list[str], labels: Sequence[str], centers: list[float], height: int) -> None:
    every = max(1, math.ceil(len(labels) / 10))  # at most ~10 labels fit under the axis
    for index, (label, x) in enumerate(zip(labels, centers, strict=True)):
        if index % every:
            continue
        parts.append(
            f'<text x="{x:.1f}" y="{height - BOTTOM + 16}" text-anchor="middle" '
            f'font-size="11" fill="{MUTED}">{escape(label)}</text>'
        )


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    description: str = "",
    fmt: Callable[[float], str] = _number,
    color: str = PALETTE[0],
    height: int = HEIGHT,
) -> Markup:
    """Vertical bars, one per label (days, say), on a zero-based axis."""
    parts, _ = _open(title, description or title, height)
    if not labels:
        return _empty(parts, height)
    top = nice_max(max(values, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    _axis(parts, top, fmt, height)
    slot = plot_w / len(labels)
    bar_w = max(1.0, slot * 0.7)
    centers = []
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = LEFT + slot * index + (slot - bar_w) / 2
        h = plot_h * value / top
        y = height - BOTTOM - h
        centers.append(x + bar_w / 2)
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" fill="{color}" '
            f'data-label="{escape(label)}" data-value="{value}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
        )
    _x_labels(parts, labels, centers, height)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped or numeric


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    description: str = "",
    fmt: Callable[[float], str] = _number,
    height: int = HEIGHT,
) -> Markup:
    """One line per series over the labels, points marked; ``None`` leaves a gap."""
    parts, _ = _open(title, description or title, height + 20)
    if not labels:
        return _empty(parts, height + 20)
    known = [v for s in series for v in s.values if v is not None]
    top = nice_max(max(known, default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, height - TOP - BOTTOM
    _axis(parts, top, fmt, height)
    slot = plot_w / len(labels)
    centers = [LEFT + slot * (i + 0.5) for i in range(len(labels))]
    for number, one in enumerate(series):
        color = PALETTE[number % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for x, value in zip(centers, one.values, strict=True):
            if value is None:
                runs.append([])
                continue
            runs[-1].append((x, height - BOTTOM - plot_h * value / top))
        for run in runs:
            if len(run) > 1:
                points = " ".join(f"{x:.1f},{y:.1f}" for x, y in run)
                parts.append(
                    f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>'
                )
        for label, x, value in zip(labels, centers, one.values, strict=True):
            if value is None:
                continue
            y = height - BOTTOM - plot_h * value / top
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}" '
                f'data-series="{escape(one.name)}" data-label="{escape(label)}" '
                f'data-value="{value}"><title>{escape(one.name)}, {escape(label)}: '
                f"{escape(fmt(value))}</title></circle>"
            )
        legend_x = LEFT + number * 160
        parts.append(
            f'<rect x="{legend_x}" y="{height + 2}" width="12" height="12" fill="{color}"/>'
            f'<text x="{legend_x + 16}" y="{height + 12}" font-size="12" fill="{INK}">'
            f"{escape(one.name)}</text>"
        )
    _x_labels(parts, labels, centers, height)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped or numeric


def hbar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float],
    *,
    description: str = "",
    fmt: Callable[[float], str] = _number,
    top: float | None = None,
    color: str = PALETTE[0],
) -> Markup:
    """Horizontal bars, one row per label (videos, say), value written at the bar's end."""
    row = 26
    height = TOP + row * max(1, len(labels)) + 8
    parts, _ = _open(title, description or title, height)
    if not labels:
        return _empty(parts, max(height, 60))
    label_w = 170
    plot_w = WIDTH - label_w - RIGHT - 70
    scale = top if top is not None else nice_max(max(values, default=0))
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + row * index
        w = plot_w * value / scale if scale else 0
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" font-size="12" '
            f'fill="{INK}">{escape(label[:28])}</text>'
            f'<rect x="{label_w}" y="{y + 3}" width="{plot_w}" height="18" fill="{GRID}" '
            f'fill-opacity="0.35"/>'
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="18" fill="{color}" '
            f'data-label="{escape(label)}" data-value="{value}">'
            f"<title>{escape(label)}: {escape(fmt(value))}</title></rect>"
            f'<text x="{label_w + plot_w + 6}" y="{y + 16}" font-size="12" fill="{INK}">'
            f"{escape(fmt(value))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped or numeric


def share_bar(
    title: str,
    labels: Sequence[str],
    shares: Sequence[float],
    *,
    description: str = "",
) -> Markup:
    """One 100% bar split by share (0-1), with a legend: a mix, like renditions watched."""
    height = 62 + 18 * math.ceil(max(1, len(labels)) / 4)
    parts, _ = _open(title, description or title, height)
    if not labels:
        return _empty(parts, height)
    plot_w = WIDTH - LEFT - RIGHT
    x = float(LEFT)
    total = sum(shares) or 1.0
    for index, (label, share) in enumerate(zip(labels, shares, strict=True)):
        color = PALETTE[index % len(PALETTE)]
        w = plot_w * share / total
        parts.append(
            f'<rect x="{x:.1f}" y="{TOP}" width="{w:.1f}" height="28" fill="{color}" '
            f'data-label="{escape(label)}" data-value="{share}">'
            f"<title>{escape(label)}: {share:.1%}</title></rect>"
        )
        x += w
        legend_x = LEFT + (index % 4) * 150
        legend_y = TOP + 44 + (index // 4) * 18
        parts.append(
            f'<rect x="{legend_x}" y="{legend_y - 10}" width="12" height="12" fill="{color}"/>'
            f'<text x="{legend_x + 16}" y="{legend_y}" font-size="12" fill="{INK}">'
            f"{escape(label)} {share:.0%}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every piece above is escaped or numeric
