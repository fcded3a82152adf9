"""The admin page's SVG charts: well-formed, CSP-safe, escaped, and carrying their numbers."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from app.web.charts import Series, bar_chart, hbar_chart, line_chart, nice_max, share_bar

SVG = "{http://www.w3.org/2000/svg}"


def _parse(markup) -> ET.Element:
    return ET.fromstring(str(markup))


def _marks(root: ET.Element) -> list[tuple[str | None, str | None]]:
    return [(e.get("data-label"), e.get("data-value")) for e in root.iter() if e.get("data-value")]


def _assert_csp_safe(root: ET.Element) -> None:
    for element in root.iter():
        assert element.tag not in (f"{SVG}style", f"{SVG}script", f"{SVG}foreignObject")
        assert "style" not in element.attrib
        assert not any(name.startswith("on") for name in element.attrib)


def test_a_bar_chart_has_one_bar_per_label_with_its_value() -> None:
    root = _parse(bar_chart("Plays", ["11-26", "11-27"], [3, 0]))
    assert root.get("role") == "img"
    assert root.findtext(f"{SVG}title") == "Plays"
    assert _marks(root) == [("11-26", "3"), ("11-27", "0")]
    _assert_csp_safe(root)


def test_bar_heights_are_proportional() -> None:
    root = _parse(bar_chart("x", ["a", "b"], [5, 10]))
    heights = [float(e.get("height", "0")) for e in root.iter(f"{SVG}rect") if e.get("data-value")]
    assert heights[1] == pytest.approx(2 * heights[0])


def test_labels_are_escaped() -> None:
    markup = hbar_chart("Top <videos>", ['<script>alert(1)</script>"'], [1.5])
    root = _parse(markup)
    assert "<script>" not in str(markup)
    assert _marks(root) == [('<script>alert(1)</script>"', "1.5")]
    _assert_csp_safe(root)


def test_a_line_chart_leaves_gaps_for_missing_days() -> None:
    root = _parse(line_chart("Startup", ["a", "b", "c"], [Series("p50", [100, None, 300])]))
    points = [e for e in root.iter(f"{SVG}circle")]
    assert [(p.get("data-label"), p.get("data-value")) for p in points] == [
        ("a", "100"),
        ("c", "300"),
    ]
    assert list(root.iter(f"{SVG}polyline")) == []  # no run of two known points
    _assert_csp_safe(root)


def test_share_bar_widths_follow_the_shares() -> None:
    root = _parse(share_bar("Mix", ["720p", "1080p"], [0.25, 0.75]))
    widths = [float(e.get("width", "0")) for e in root.iter(f"{SVG}rect") if e.get("data-value")]
    assert widths[1] == pytest.approx(3 * widths[0], rel=0.01)
    _assert_csp_safe(root)


@pytest.mark.parametrize(
    "chart",
    [
        lambda: bar_chart("x", [], []),
        lambda: hbar_chart("x", [], []),
        lambda: line_chart("x", [], []),
        lambda: share_bar("x", [], []),
    ],
)
def test_no_data_says_so(chart) -> None:
    root = _parse(chart())
    assert "No data in this range" in "".join(root.itertext())


@pytest.mark.parametrize(
    ("value", "top"),
    [(0, 1), (1, 1), (1.01, 2), (3, 5), (7, 10), (26, 50), (0.3, 0.5), (2400, 2500)],
)
def test_axis_tops_are_round(value, top) -> None:
    assert nice_max(value) == pytest.approx(top)
