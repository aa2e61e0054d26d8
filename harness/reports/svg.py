"""Static SVG scatter/line plots for the report: no plotting library, nothing fetched at view time.

A plot is a list of points in named series, optional log axes, optional lines joining each
series, and an optional Pareto frontier drawn over all points.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from markupsafe import escape

WIDTH, HEIGHT = 660, 380
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 170, 16, 46
# Okabe–Ito: distinguishable with the common colour-vision deficiencies.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442",
           "#000000", "#999999", "#882255")


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    label: str
    series: str


def pareto_front(points: Sequence[Point], minimize_x: bool) -> list[Point]:
    """Points no other point beats on both axes (higher y is better; x lower or higher as given).

    Sorted from the best x to the worst, a point is on the frontier when its y exceeds every y
    seen so far; ties in x keep only the highest y. Returned in ascending x.
    """
    order = sorted(points, key=lambda p: (p.x if minimize_x else -p.x, -p.y))
    front, best_y = [], -math.inf
    for p in order:
        if p.y > best_y:
            front.append(p)
            best_y = p.y
    return sorted(front, key=lambda p: p.x)


class _Axis:
    def __init__(self, values: Sequence[float], log: bool, lo_px: float, hi_px: float):
        self.log = log and all(v > 0 for v in values)
        lo, hi = min(values), max(values)
        if self.log:
            lo, hi = math.log10(lo), math.log10(hi)
        span = hi - lo or (abs(hi) or 1.0)
        self.lo, self.hi = lo - 0.06 * span, hi + 0.06 * span
        self.lo_px, self.hi_px = lo_px, hi_px

    def px(self, value: float) -> float:
        v = math.log10(value) if self.log else value
        return self.lo_px + (v - self.lo) / (self.hi - self.lo) * (self.hi_px - self.lo_px)

    def ticks(self) -> list[float]:
        if self.log:
            decades = range(math.floor(self.lo), math.ceil(self.hi) + 1)
            span = self.hi - self.lo
            steps = (1, 2, 3, 5) if span < 1.2 else (1, 2, 5) if span < 2.5 else (1,)
            out = [m * 10.0 ** d for d in decades for m in steps]
            return [t for t in out if self.lo <= math.log10(t) <= self.hi]
        raw = (self.hi - self.lo) / 5
        magnitude = 10 ** math.floor(math.log10(raw))
        step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
        first = math.ceil(self.lo / step) * step
        return [first + i * step for i in range(int((self.hi - first) / step) + 1)]


def _fmt(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def scatter(points: Sequence[Point], x_label: str, y_label: str, *, x_log: bool = False,
            y_log: bool = False, connect: bool = False,
            frontier: Optional[Sequence[Point]] = None, annotate: bool = False,
            title: str = "") -> str:
    """One <svg> element. Each point has a <title> tooltip; the frontier is a thick dashed line.

    `annotate` writes the labels of the frontier points next to them (series colours repeat
    beyond ten series, so names on the plot keep the frontier readable).
    """
    if not points:
        return ""
    plot_right = WIDTH - MARGIN_RIGHT
    plot_bottom = HEIGHT - MARGIN_BOTTOM
    xa = _Axis([p.x for p in points], x_log, MARGIN_LEFT, plot_right)
    ya = _Axis([p.y for p in points], y_log, plot_bottom, MARGIN_TOP)
    series = list(dict.fromkeys(p.series for p in points))
    color = {name: PALETTE[i % len(PALETTE)] for i, name in enumerate(series)}
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
           f'width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{escape(title)}" '
           f'font-family="system-ui, sans-serif" font-size="11">']
    out.append(f'<rect x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{plot_right - MARGIN_LEFT}" '
               f'height="{plot_bottom - MARGIN_TOP}" fill="#fff" stroke="#bbb"/>')
    for t in xa.ticks():
        x = xa.px(t)
        out.append(f'<line x1="{x:.1f}" y1="{MARGIN_TOP}" x2="{x:.1f}" y2="{plot_bottom}" '
                   f'stroke="#eee"/><text x="{x:.1f}" y="{plot_bottom + 14}" '
                   f'text-anchor="middle" fill="#444">{_fmt(t)}</text>')
    for t in ya.ticks():
        y = ya.px(t)
        out.append(f'<line x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{plot_right}" y2="{y:.1f}" '
                   f'stroke="#eee"/><text x="{MARGIN_LEFT - 5}" y="{y + 4:.1f}" '
                   f'text-anchor="end" fill="#444">{_fmt(t)}</text>')
    log_note = lambda log: " (log scale)" if log else ""  # noqa: E731
    out.append(f'<text x="{(MARGIN_LEFT + plot_right) / 2:.0f}" y="{HEIGHT - 8}" '
               f'text-anchor="middle" fill="#222">{escape(x_label)}{log_note(xa.log)}</text>')
    out.append(f'<text transform="translate(14 {(MARGIN_TOP + plot_bottom) / 2:.0f}) rotate(-90)" '
               f'text-anchor="middle" fill="#222">{escape(y_label)}{log_note(ya.log)}</text>')
    if frontier:
        path = " ".join(f"{xa.px(p.x):.1f},{ya.px(p.y):.1f}" for p in frontier)
        out.append(f'<polyline points="{path}" fill="none" stroke="#d62728" stroke-width="2.5" '
                   f'stroke-dasharray="6 3" class="frontier"/>')
    for name in series:
        members = [p for p in points if p.series == name]
        if connect and len(members) > 1:
            path = " ".join(f"{xa.px(p.x):.1f},{ya.px(p.y):.1f}"
                            for p in sorted(members, key=lambda p: p.x))
            out.append(f'<polyline points="{path}" fill="none" stroke="{color[name]}" '
                       f'stroke-width="1.5"/>')
    on_front = {id(p) for p in frontier or ()}
    for p in points:
        ring = ' stroke="#d62728" stroke-width="2"' if id(p) in on_front else ' stroke="#fff"'
        out.append(f'<circle cx="{xa.px(p.x):.1f}" cy="{ya.px(p.y):.1f}" r="4.5" '
                   f'fill="{color[p.series]}"{ring}><title>{escape(p.label)}: '
                   f'{escape(x_label)} {_fmt(p.x)}, {escape(y_label)} {_fmt(p.y)}</title></circle>')
    for p in frontier or () if annotate else ():
        out.append(f'<text x="{xa.px(p.x) + 7:.1f}" y="{ya.px(p.y) - 6:.1f}" fill="#333" '
                   f'font-size="10">{escape(_short(p.label))}</text>')
    legend_x = plot_right + 12
    for i, name in enumerate(series[:20]):
        y = MARGIN_TOP + 8 + i * 16
        out.append(f'<circle cx="{legend_x}" cy="{y}" r="4.5" fill="{color[name]}"/>'
                   f'<text x="{legend_x + 9}" y="{y + 4}" fill="#222">{escape(_short(name))}</text>')
    if frontier:
        y = MARGIN_TOP + 8 + min(len(series), 20) * 16
        out.append(f'<line x1="{legend_x - 5}" y1="{y}" x2="{legend_x + 5}" y2="{y}" '
                   f'stroke="#d62728" stroke-width="2.5" stroke-dasharray="4 2"/>'
                   f'<text x="{legend_x + 9}" y="{y + 4}" fill="#222">Pareto frontier</text>')
    out.append("</svg>")
    return "".join(out)


def _short(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"
