"""SVG and text primitives of the report: escaping, number formats, axes, legends,
tooltips and the palette.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable
from datetime import date

from customer_marts.report.scales import Linear

log = logging.getLogger(__name__)


INK = "#1f2937"
MUTED = "#9ca3af"
GRID = "#e5e7eb"
BLUE = "#2563eb"
ORANGE = "#ea580c"
GREEN = "#16a34a"
AMBER = "#d97706"
RED = "#dc2626"
# The heatmap's sequential scale, light to dark (ColorBrewer Blues).
HEAT_LOW = (239, 246, 255)
HEAT_HIGH = (8, 48, 107)


def esc(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def fmt_number(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f} %"


def month_label(day: date) -> str:
    return f"{day:%Y-%m}"


def svg(chart_id: str, width: int, height: int, label: str, body: Iterable[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" data-chart="{chart_id}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{esc(label)}">' + "".join(body) + "</svg>"
    )


def text(x: float, y: float, content: object, anchor: str = "start", **attrs: object) -> str:
    extra = "".join(
        f' {key.rstrip("_").replace("_", "-")}="{esc(value)}"' for key, value in attrs.items()
    )
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{esc(content)}</text>'


def tooltip(content: str) -> str:
    return f"<title>{esc(content)}</title>"


def y_axis(scale: Linear, ticks: list[float], left: float, right: float, fmt) -> list[str]:
    """Horizontal grid lines with their labels left of the plot."""
    parts = []
    for tick in ticks:
        y = scale(tick)
        parts.append(
            f'<line x1="{left:.1f}" x2="{right:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{GRID}"/>'
        )
        parts.append(text(left - 6, y + 4, fmt(tick), "end", class_="tick"))
    return parts


def x_axis(scale: Linear, ticks: list[float], top: float, bottom: float, fmt) -> list[str]:
    """Vertical grid lines with their labels under the plot (a bar chart's value axis)."""
    parts = []
    for tick in ticks:
        x = scale(tick)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{top:.1f}" y2="{bottom:.1f}" stroke="{GRID}"/>'
        )
        parts.append(text(x, bottom + 16, fmt(tick), "middle", class_="tick"))
    return parts


def axis_titles(
    width: int, height: int, x_title: str, y_title: str, top: float, bottom: float
) -> list[str]:
    middle = (top + bottom) / 2
    return [
        text(width / 2, height - 6, x_title, "middle", class_="axis-title"),
        f'<text x="14" y="{middle:.1f}" text-anchor="middle" class="axis-title" '
        f'transform="rotate(-90 14 {middle:.1f})">{esc(y_title)}</text>',
    ]


def legend(x: float, y: float, items: list[tuple[str, str]]) -> list[str]:
    """Legend entries (label, SVG swatch drawn at 0,0) laid out left to right."""
    parts = []
    for label, swatch in items:
        parts.append(f'<g transform="translate({x:.1f},{y:.1f})">{swatch}</g>')
        parts.append(text(x + 16, y + 4, label, class_="legend"))
        x += 28 + 6.5 * len(label)
    return parts


def heat_colour(share: float) -> str:
    share = min(max(share, 0.0), 1.0)
    rgb = (round(lo + (hi - lo) * share) for lo, hi in zip(HEAT_LOW, HEAT_HIGH, strict=True))
    return "#{:02x}{:02x}{:02x}".format(*rgb)
