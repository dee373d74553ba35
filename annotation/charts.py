"""Server-side SVG charts for the quality dashboard: no JavaScript chart library, no CDN.

Each builder takes plain rows (from `annotation.stats`) and answers a `Chart`: the SVG markup and
the same numbers as a table (columns + rows), which the dashboard shows under the chart and
serves as CSV. Every piece of text that comes from data (model names, labels, usernames) is
escaped here (`_html`, which works like format_html) before the markup is marked safe.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field

from django.utils.html import conditional_escape
from django.utils.safestring import SafeString, mark_safe

PALETTE = ("#3556d8", "#1d7a46", "#d97706", "#b42318", "#7c3aed", "#0891b2", "#be185d", "#4d7c0f")
RATING_COLORS = {1: "#b42318", 2: "#f97316", 3: "#eab308", 4: "#84cc16", 5: "#1d7a46"}
FONT = 'font-family="system-ui, sans-serif" font-size="12"'
WIDTH = 640


@dataclass
class Chart:
    key: str
    title: str
    svg: SafeString
    columns: list[str]
    rows: list[list] = field(default_factory=list)
    empty: bool = False
    note: str = ""

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(self.columns)
        for row in self.rows:
            writer.writerow(["" if v is None else _plain(v) for v in row])
        return buffer.getvalue()


def _html(template: str, *args) -> SafeString:
    """Like format_html, but numbers keep their type so templates can format them ({:.1f});
    everything else is escaped."""
    clean = [
        a if isinstance(a, int | float) and not isinstance(a, bool) else conditional_escape(a) for a in args
    ]
    return mark_safe(template.format(*clean))


def _plain(value):
    if isinstance(value, float):
        return f"{value:.4f}".rstrip("0").rstrip(".") if math.isfinite(value) else ""
    return value


def fmt(value, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _svg(key: str, title: str, width: int, height: int, body: list[str]) -> SafeString:
    head = _html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="chart-{}" viewBox="0 0 {} {}" '
        'width="100%" role="img" aria-labelledby="chart-{}-title" {}>'
        '<title id="chart-{}-title">{}</title>',
        key,
        width,
        height,
        key,
        mark_safe(FONT),
        key,
        title,
    )
    return mark_safe(head + "".join(body) + "</svg>")


def _empty(key: str, title: str, columns: list[str], message: str) -> Chart:
    body = [_html('<text x="{}" y="40" text-anchor="middle" fill="#667085">{}</text>', WIDTH // 2, message)]
    return Chart(key=key, title=title, svg=_svg(key, title, WIDTH, 70, body), columns=columns, empty=True)


def _nice_max(value: float) -> float:
    if value <= 0:
        return 1.0
    exponent = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exponent:
            return step * exponent
    return 10 * exponent


def _label(text: str, limit: int = 22) -> str:
    text = str(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- Builders ------------------------------------------------------------------------------------


def horizontal_bars(
    *,
    key: str,
    title: str,
    rows: list[tuple[str, float | None, str]],
    columns: list[str],
    table: list[list],
    unit: str = "",
    empty: str = "No data yet.",
) -> Chart:
    """One bar per row: (label, value, text shown at the bar's end)."""
    rows = [r for r in rows if r[1] is not None]
    if not rows:
        return _empty(key, title, columns, empty)
    left, bar_h, gap = 170, 18, 8
    height = 20 + len(rows) * (bar_h + gap)
    top = _nice_max(max(r[1] for r in rows))
    span = WIDTH - left - 90
    body = []
    for i, (label, value, text) in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        w = max(1.0, span * value / top)
        body.append(
            _html(
                '<text x="{}" y="{}" text-anchor="end" fill="#1d2330"><title>{}</title>{}</text>'
                '<rect class="bar" x="{}" y="{}" width="{:.1f}" height="{}" rx="3" fill="{}" data-value="{}">'
                "<title>{}: {}{}</title></rect>"
                '<text x="{:.1f}" y="{}" fill="#1d2330">{}</text>',
                left - 8,
                y + 13,
                label,
                _label(label),
                left,
                y,
                w,
                bar_h,
                PALETTE[0],
                value,
                label,
                text,
                unit,
                left + w + 6,
                y + 13,
                text,
            )
        )
    return Chart(key=key, title=title, svg=_svg(key, title, WIDTH, height, body), columns=columns, rows=table)


def stacked_ratings(*, key: str, title: str, rows: list[dict]) -> Chart:
    """Per source, a 100% bar split by rating 1-5."""
    columns = ["source", "1", "2", "3", "4", "5", "total", "mean"]
    table = [[r["source"], *(r[str(n)] for n in range(1, 6)), r["total"], r["mean"]] for r in rows]
    rows = [r for r in rows if r["total"]]
    if not rows:
        return _empty(key, title, columns, "No ratings yet.")
    left, bar_h, gap = 170, 20, 8
    height = 44 + len(rows) * (bar_h + gap)
    span = WIDTH - left - 70
    body = []
    for i, row in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        x = float(left)
        body.append(
            _html(
                '<text x="{}" y="{}" text-anchor="end" fill="#1d2330"><title>{}</title>{}</text>',
                left - 8,
                y + 14,
                row["source"],
                _label(row["source"]),
            )
        )
        for rating in range(1, 6):
            count = row[str(rating)]
            if not count:
                continue
            w = span * count / row["total"]
            body.append(
                _html(
                    '<rect class="segment" x="{:.1f}" y="{}" width="{:.1f}" height="{}" fill="{}" '
                    'data-rating="{}" data-value="{}"><title>{}: rating {}, {} of {}</title></rect>',
                    x,
                    y,
                    w,
                    bar_h,
                    RATING_COLORS[rating],
                    rating,
                    count,
                    row["source"],
                    rating,
                    count,
                    row["total"],
                )
            )
            if w > 18:
                body.append(
                    _html(
                        '<text x="{:.1f}" y="{}" text-anchor="middle" fill="#fff">{}</text>',
                        x + w / 2,
                        y + 14,
                        count,
                    )
                )
            x += w
        body.append(
            _html(
                '<text x="{}" y="{}" fill="#1d2330">mean {}</text>', left + span + 6, y + 14, fmt(row["mean"])
            )
        )
    legend_y = height - 14
    for n, rating in enumerate(range(1, 6)):
        body.append(
            _html(
                '<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>',
                left + n * 60,
                legend_y - 9,
                RATING_COLORS[rating],
                left + n * 60 + 14,
                legend_y,
                rating,
            )
        )
    return Chart(key=key, title=title, svg=_svg(key, title, WIDTH, height, body), columns=columns, rows=table)


def progress_chart(*, key: str, title: str, rows: list[dict]) -> Chart:
    """Tasks finished per day (bars, left axis) and tasks remaining (line, right axis)."""
    columns = ["date", "done", "annotations", "remaining"]
    table = [[r["date"], r["done"], r["annotations"], r["remaining"]] for r in rows]
    if not rows:
        return _empty(key, title, columns, "No tasks yet.")
    left, right, top_pad, bottom = 44, 54, 12, 40
    height = 220
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    done_max = _nice_max(max(max(r["done"] for r in rows), 1))
    remaining_max = _nice_max(max(max(r["remaining"] for r in rows), 1))
    step = plot_w / len(rows)
    bar_w = min(step * 0.7, 40.0)
    body = [
        _html(
            '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#e3e6eb"/>',
            left,
            top_pad + plot_h,
            left + plot_w,
            top_pad + plot_h,
        ),
        _html(
            '<text x="{}" y="{}" text-anchor="end" fill="{}">{}</text>',
            left - 6,
            top_pad + 10,
            PALETTE[0],
            int(done_max),
        ),
        _html(
            '<text x="{}" y="{}" text-anchor="start" fill="{}">{}</text>',
            left + plot_w + 6,
            top_pad + 10,
            PALETTE[2],
            int(remaining_max),
        ),
    ]
    points = []
    for i, row in enumerate(rows):
        x = left + i * step
        h = plot_h * row["done"] / done_max
        body.append(
            _html(
                '<rect class="bar" x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="{}" data-value="{}">'
                "<title>{}: {} done, {} remaining</title></rect>",
                x + (step - bar_w) / 2,
                top_pad + plot_h - h,
                bar_w,
                h,
                PALETTE[0],
                row["done"],
                row["date"],
                row["done"],
                row["remaining"],
            )
        )
        points.append(
            f"{x + step / 2:.1f},{top_pad + plot_h - plot_h * row['remaining'] / remaining_max:.1f}"
        )
    body.append(
        _html(
            '<polyline class="line" points="{}" fill="none" stroke="{}" stroke-width="2"/>',
            " ".join(points),
            PALETTE[2],
        )
    )
    for i in sorted({0, len(rows) // 2, len(rows) - 1}):
        body.append(
            _html(
                '<text x="{:.1f}" y="{}" text-anchor="middle" fill="#667085">{}</text>',
                left + i * step + step / 2,
                height - 22,
                rows[i]["date"][5:],
            )
        )
    body.append(
        _html(
            '<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">done per day</text>'
            '<rect x="{}" y="{}" width="10" height="3" fill="{}"/><text x="{}" y="{}">remaining</text>',
            left,
            height - 12,
            PALETTE[0],
            left + 14,
            height - 3,
            left + 130,
            height - 8,
            PALETTE[2],
            left + 144,
            height - 3,
        )
    )
    return Chart(key=key, title=title, svg=_svg(key, title, WIDTH, height, body), columns=columns, rows=table)


def line_chart(
    *, key: str, title: str, series: dict[str, list[tuple[str, float | None, int]]], y_min: float = -0.2
) -> Chart:
    """One line per series over dates: (date, value, n) points; values on a fixed -0.2..1 axis
    (agreement statistics), dots sized by how many tasks each rests on."""
    columns = ["date", "series", "value", "tasks"]
    table = [[d, name, v, n] for name, points in series.items() for d, v, n in points]
    dates = sorted({d for points in series.values() for d, v, _ in points if v is not None})
    if not dates:
        return _empty(key, title, columns, "Agreement needs tasks with two or more annotations.")
    left, right, top_pad, bottom = 44, 20, 12, 40
    height = 220
    plot_w, plot_h = WIDTH - left - right, height - top_pad - bottom
    x_of = {d: left + (i + 0.5) * plot_w / len(dates) for i, d in enumerate(dates)}

    def y_of(v: float) -> float:
        v = min(max(v, y_min), 1.0)
        return top_pad + plot_h * (1.0 - (v - y_min) / (1.0 - y_min))

    body = []
    for tick in (0.0, 0.5, 1.0):
        body.append(
            _html(
                '<line x1="{}" y1="{:.1f}" x2="{}" y2="{:.1f}" stroke="#e3e6eb"/>'
                '<text x="{}" y="{:.1f}" text-anchor="end" fill="#667085">{}</text>',
                left,
                y_of(tick),
                left + plot_w,
                y_of(tick),
                left - 6,
                y_of(tick) + 4,
                tick,
            )
        )
    for n, (name, points) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        kept = [(d, v, k) for d, v, k in points if v is not None]
        if len(kept) > 1:
            body.append(
                _html(
                    '<polyline class="line" points="{}" fill="none" stroke="{}" stroke-width="2"/>',
                    " ".join(f"{x_of[d]:.1f},{y_of(v):.1f}" for d, v, _ in kept),
                    color,
                )
            )
        for d, v, k in kept:
            body.append(
                _html(
                    '<circle class="point" cx="{:.1f}" cy="{:.1f}" r="{:.1f}" fill="{}" data-value="{}">'
                    "<title>{} {}: {} on {} task(s)</title></circle>",
                    x_of[d],
                    y_of(v),
                    min(3 + math.sqrt(k), 8),
                    color,
                    fmt(v, 3),
                    name,
                    d,
                    fmt(v, 3),
                    k,
                )
            )
        body.append(
            _html(
                '<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>',
                left + n * 110,
                height - 12,
                color,
                left + n * 110 + 14,
                height - 3,
                name,
            )
        )
    for i in sorted({0, len(dates) - 1}):
        body.append(
            _html(
                '<text x="{:.1f}" y="{}" text-anchor="middle" fill="#667085">{}</text>',
                x_of[dates[i]],
                height - 22,
                dates[i][5:],
            )
        )
    return Chart(key=key, title=title, svg=_svg(key, title, WIDTH, height, body), columns=columns, rows=table)


def interval_chart(*, key: str, title: str, rows: list[dict]) -> Chart:
    """Bradley–Terry scores with bootstrap 95% intervals (a forest plot), plus win rates."""
    columns = [
        "model",
        "bt_score",
        "ci_low",
        "ci_high",
        "win_rate",
        "wins",
        "losses",
        "ties",
        "comparisons",
        "baseline",
    ]
    table = [
        [
            r["model"],
            r["bt_score"],
            r["ci_low"],
            r["ci_high"],
            r["win_rate"],
            r["wins"],
            r["losses"],
            r["ties"],
            r["comparisons"],
            r["baseline"],
        ]
        for r in rows
    ]
    rows = [r for r in rows if r["bt_score"] is not None]
    if not rows:
        return _empty(key, title, columns, "No comparisons between two different models yet.")
    left, right, row_h = 170, 150, 26
    height = 40 + len(rows) * row_h
    plot_w = WIDTH - left - right
    values = [v for r in rows for v in (r["bt_score"], r["ci_low"], r["ci_high"]) if v is not None]
    low, high = min(values), max(values)
    pad = max((high - low) * 0.08, 10.0)
    low, high = low - pad, high + pad

    def x_of(v: float) -> float:
        return left + plot_w * (v - low) / (high - low)

    body = [
        _html(
            '<line x1="{:.1f}" y1="6" x2="{:.1f}" y2="{}" stroke="#e3e6eb" stroke-dasharray="3 3"/>',
            x_of(1000.0) if low <= 1000 <= high else left,
            x_of(1000.0) if low <= 1000 <= high else left,
            height - 26,
        )
    ]
    for i, row in enumerate(rows):
        y = 18 + i * row_h
        lo = row["ci_low"] if row["ci_low"] is not None else row["bt_score"]
        hi = row["ci_high"] if row["ci_high"] is not None else row["bt_score"]
        body.append(
            _html(
                '<text x="{}" y="{}" text-anchor="end" fill="#1d2330"><title>{}</title>{}</text>'
                '<line x1="{:.1f}" y1="{}" x2="{:.1f}" y2="{}" stroke="{}" stroke-width="2"/>'
                '<circle class="point" cx="{:.1f}" cy="{}" r="5" fill="{}" data-value="{:.1f}">'
                "<title>{}: {} (95% CI {} to {}), win rate {}</title></circle>"
                '<text x="{}" y="{}" fill="#1d2330">{} · {} wins</text>',
                left - 8,
                y + 4,
                row["model"],
                _label(row["model"]),
                x_of(lo),
                y,
                x_of(hi),
                y,
                PALETTE[0],
                x_of(row["bt_score"]),
                y,
                PALETTE[0],
                row["bt_score"],
                row["model"],
                fmt(row["bt_score"], 0),
                fmt(lo, 0),
                fmt(hi, 0),
                fmt(row["win_rate"]),
                left + plot_w + 10,
                y + 4,
                fmt(row["bt_score"], 0),
                f"{row['win_rate']:.0%}",
            )
        )
    body.append(
        _html(
            '<text x="{}" y="{}" fill="#667085">{}</text><text x="{}" y="{}" text-anchor="end" fill="#667085">{}</text>',
            left,
            height - 8,
            fmt(low, 0),
            left + plot_w,
            height - 8,
            fmt(high, 0),
        )
    )
    return Chart(
        key=key,
        title=title,
        svg=_svg(key, title, WIDTH, height, body),
        columns=columns,
        rows=table,
        note="Bradley–Terry scores on the Elo scale (baseline at 1000), 95% bootstrap intervals; ties count half.",
    )


def progress_by_mode_chart(*, key: str, title: str, progress: dict) -> Chart:
    """Per mode, one bar split into done, leased and open tasks."""
    columns = ["mode", "done", "leased", "open", "gold"]
    table = [[mode, p["done"], p["leased"], p["open"], p["gold"]] for mode, p in progress.items()]
    rows = [(mode, p) for mode, p in progress.items() if p["done"] + p["leased"] + p["open"]]
    if not rows:
        return _empty(key, title, columns, "No review tasks yet.")
    left, bar_h, gap = 90, 20, 8
    height = 44 + len(rows) * (bar_h + gap)
    span = WIDTH - left - 120
    colors = {"done": PALETTE[1], "leased": PALETTE[2], "open": "#cbd5e1"}
    body = []
    for i, (mode, p) in enumerate(rows):
        y = 10 + i * (bar_h + gap)
        total = p["done"] + p["leased"] + p["open"]
        x = float(left)
        body.append(_html('<text x="{}" y="{}" text-anchor="end">{}</text>', left - 8, y + 14, mode))
        for part in ("done", "leased", "open"):
            if not p[part]:
                continue
            w = span * p[part] / total
            body.append(
                _html(
                    '<rect class="segment" x="{:.1f}" y="{}" width="{:.1f}" height="{}" fill="{}" data-part="{}" '
                    'data-value="{}"><title>{}: {} {}</title></rect>',
                    x,
                    y,
                    w,
                    bar_h,
                    colors[part],
                    part,
                    p[part],
                    mode,
                    p[part],
                    part,
                )
            )
            x += w
        body.append(
            _html('<text x="{}" y="{}">{} / {} done</text>', left + span + 6, y + 14, p["done"], total)
        )
    for n, part in enumerate(("done", "leased", "open")):
        body.append(
            _html(
                '<rect x="{}" y="{}" width="10" height="10" fill="{}"/><text x="{}" y="{}">{}</text>',
                left + n * 80,
                height - 23,
                colors[part],
                left + n * 80 + 14,
                height - 14,
                part,
            )
        )
    return Chart(key=key, title=title, svg=_svg(key, title, WIDTH, height, body), columns=columns, rows=table)


# --- The dashboard's charts ----------------------------------------------------------------------

CHART_KEYS = ("progress", "progress-by-mode", "throughput", "ratings", "models", "labels", "agreement")


def dashboard_charts(stats: dict) -> dict[str, Chart]:
    """Every dashboard chart from `annotation.stats.project_stats` output, by key."""
    annotators = stats["annotators"]
    throughput_rows = [
        (
            a["username"],
            a["tasks_per_hour"],
            f"{fmt(a['tasks_per_hour'], 1)}/h · median {fmt(a['median_seconds'], 0)} s",
        )
        for a in annotators
    ]
    throughput_table = [
        [a["username"], a["annotations"], a["tasks_per_hour"], a["median_seconds"]] for a in annotators
    ]
    series: dict[str, list] = {}
    for row in stats["agreement_over_time"]:
        series.setdefault(row["mode"], []).append((row["date"], row["value"], row["tasks"]))
    labels = stats["labels"]
    return {
        "progress": progress_chart(
            key="progress", title="Progress over time", rows=stats["progress_over_time"]
        ),
        "progress-by-mode": progress_by_mode_chart(
            key="progress-by-mode", title="Progress per mode", progress=stats["progress"]
        ),
        "throughput": horizontal_bars(
            key="throughput",
            title="Throughput per annotator (tasks per hour of work)",
            rows=throughput_rows,
            columns=["annotator", "annotations", "tasks_per_hour", "median_seconds"],
            table=throughput_table,
            empty="No timed annotations yet.",
        ),
        "ratings": stacked_ratings(
            key="ratings", title="Rating distribution per model", rows=stats["ratings_by_source"]
        ),
        "models": interval_chart(key="models", title="Compare: Bradley–Terry ranking", rows=stats["models"]),
        "labels": horizontal_bars(
            key="labels",
            title="Label distribution",
            rows=[(r["label"], r["count"], str(r["count"])) for r in labels if r["count"]],
            columns=["label", "count"],
            table=[[r["label"], r["count"]] for r in labels],
            empty="No labels given yet.",
        ),
        "agreement": line_chart(key="agreement", title="Agreement over time", series=series),
    }
