"""The status page at ``/``: one card per container, rendered from a snapshot. Pure.

:func:`render` turns a :class:`~azwatch.snapshot.Snapshot` into one HTML document: an
inline stylesheet, an inline SVG chart per container, a ``meta refresh`` and nothing else.
No script, no font, no image, nothing fetched from anywhere (``/`` sends a
Content-Security-Policy that forbids it). Every value from the snapshot is escaped, an
unknown one reads "unknown", and nothing on the page is a URL or a secret: reference
endpoints appear under the secret-free labels the snapshot carries.

Times are shown in UTC: the page is rendered on the server and the reader's zone is not
known there.
"""

from __future__ import annotations

import html
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from azwatch.history import ChartPoint
from azwatch.progress import format_block, format_duration, format_value
from azwatch.snapshot import ContainerView, RestartView, Snapshot

#: Seconds between the page's own reloads.
REFRESH = 15

#: What ``/`` may load: nothing but its own inline style (no script at all).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# The chart's drawing, in SVG user units (scaled to the card's width).
_WIDTH, _HEIGHT = 400.0, 236.0
_LEFT, _RIGHT = 4.0, 396.0
_BLOCKS_TOP, _BLOCKS_BOTTOM = 22.0, 132.0
_LAG_TOP, _LAG_BOTTOM = 152.0, 212.0
#: Points drawn per line at most: more than the pixels of a card would not show.
MAX_DRAWN = 480

_STYLE = """
:root{color-scheme:light dark;--fg:#1b1f24;--bg:#f3f4f6;--card:#fff;--mute:#59636e;
--line:#d1d9e0;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--best:#0969da;--lag:#bc4c00}
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--bg:#0d1117;--card:#161b22;
--mute:#9198a1;--line:#3d444d;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--best:#4493f8;
--lag:#f0883e}}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:var(--fg);background:var(--bg)}
header,main,footer{max-width:84rem;margin:0 auto;padding:.6rem 1rem}
h1{font-size:1.35rem;margin:0}
header p,footer{color:var(--mute);margin:.2rem 0;font-size:.9rem}
main{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,27rem),1fr));
gap:1rem;align-items:start}
.card{background:var(--card);border:1px solid var(--line);border-radius:.6rem;
padding:.8rem 1rem;min-width:0}
h2{font-size:1.1rem;margin:0 0 .5rem;overflow-wrap:anywhere}
h3{font-size:.95rem;margin:.9rem 0 .3rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.15rem .8rem;margin:0}
dt{color:var(--mute)}
dd{margin:0;overflow-wrap:break-word;min-width:0}
.badge{display:inline-block;font-size:.75rem;font-weight:600;padding:0 .5rem;
border-radius:1rem;border:1px solid currentColor;vertical-align:middle}
.ok{color:var(--ok)}.bad{color:var(--bad)}.warn{color:var(--warn)}.mute{color:var(--mute)}
.detail{color:var(--mute);font-size:.85rem}
svg{display:block;width:100%;height:auto}
svg text{fill:var(--mute);font-size:11px}
svg .frame{fill:none;stroke:var(--line)}
polyline{fill:none;stroke-width:1.6;stroke-linejoin:round}
.s-best{stroke:var(--best)}.s-head{stroke:var(--mute);stroke-dasharray:5 3}
.s-lag{stroke:var(--lag)}.restart{stroke:var(--bad);stroke-width:1;stroke-dasharray:2 2}
.key-best{fill:var(--best)}.key-head{fill:var(--mute)}.key-lag{fill:var(--lag)}
table{width:100%;border-collapse:collapse;font-size:.88rem}
th,td{text-align:left;padding:.2rem .35rem;border-top:1px solid var(--line);
vertical-align:top;overflow-wrap:anywhere}
td.when{white-space:nowrap}
th{color:var(--mute);font-weight:500}
"""


def render(snapshot: Snapshot, *, refresh: int = REFRESH) -> str:
    """The whole page for *snapshot*, reloading itself every *refresh* seconds."""
    count = len(snapshot.containers)
    title = f"azwatch: {count} container{'s' if count != 1 else ''}"
    cards = "\n".join(_card(view, snapshot.time) for view in snapshot.containers)
    if not cards:
        cards = '<p class="mute">No container is watched yet.</p>'
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta http-equiv="refresh" content="{int(refresh)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{_e(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"{_header(snapshot, refresh)}\n<main>\n{cards}\n</main>\n"
        '<footer>azwatch · <a href="status">/status</a> (JSON) · '
        '<a href="metrics">/metrics</a> · <a href="healthz">/healthz</a></footer>\n'
        "</body>\n</html>\n"
    )


def _header(snapshot: Snapshot, refresh: int) -> str:
    now = snapshot.time
    if snapshot.healthy:
        health = '<span class="badge ok">watcher healthy</span>'
    else:
        items = "".join(f"<li>{_e(problem)}</li>" for problem in snapshot.problems)
        health = f'<span class="badge bad">watcher not healthy</span><ul class="bad">{items}</ul>'
    dry = (
        ' <span class="badge warn">dry run: no container is touched</span>'
        if snapshot.dry_run
        else ""
    )
    head = snapshot.head
    reference = (
        f"reference: last head poll {_ago(head.last_poll_age)}, "
        f"last answer {_ago(head.last_ok_age)}"
    )
    failures = "".join(
        f"<li>{_e(f.endpoint)}: {_e(f.kind)}: {_e(f.detail)}</li>" for f in head.failures
    )
    failing = f'<ul class="warn">{failures}</ul>' if failures else ""
    return (
        f"<header>\n<h1>azwatch</h1>\n"
        f"<p>{health}{dry}</p>\n"
        f"<p>as of {_e(_clock(now, now))} · reloads every {int(refresh)}s</p>\n"
        f"<p>{_e(reference)}</p>{failing}\n</header>"
    )


def _card(view: ContainerView, now: float) -> str:
    name = _e(view.name)
    badges = [
        '<span class="badge ok">running</span>'
        if view.running
        else f'<span class="badge bad">{_e(view.status)}</span>'
    ]
    if view.restart_in_flight:
        badges.append('<span class="badge warn">restarting</span>')
    if view.pause is not None:
        badges.append('<span class="badge warn">restarts paused</span>')
    if view.crash_loop:
        badges.append('<span class="badge bad">crash loop</span>')
    rows = [
        ("state", _e(view.status)),
        ("sync mode", "major sync" if view.major_sync else "not in major sync"),
        ("producing", "yes" if view.producing else "no"),
        ("peers", _e(format_value(view.peers))),
        ("best block", _e(format_block(view.best))),
        ("network head", _e(format_block(view.head))),
        ("lag now", "unknown" if view.lag is None else _blocks(view.lag)),
        ("decision now", _decision(view)),
        ("cooldown", _cooldown(view, now)),
        ("pause", _pause(view, now)),
        ("restarts", _restart_count(view)),
    ]
    if view.fatal:
        rows.append(("fatal line", f'<span class="bad">{_e(view.fatal)}</span>'))
    if view.last_exit is not None:
        css = "bad" if view.crash_loop else "warn"
        exits = f'<span class="{css}">{view.crashes}</span>, the last with {_e(view.last_exit)}'
        rows.append(("exits by itself", exits))
    facts = "\n".join(f"<dt>{label}</dt><dd>{value}</dd>" for label, value in rows)
    return (
        f'<section class="card" id="container-{name}">\n'
        f"<h2>{name} {' '.join(badges)}</h2>\n"
        f"<dl>\n{facts}\n</dl>\n"
        f"<h3>Best block, network head and lag</h3>\n{chart(view.history, view, now)}\n"
        f"<h3>Last restarts</h3>\n{_restarts(view.recent_restarts, now)}\n"
        "</section>"
    )


def _decision(view: ContainerView) -> str:
    decision = view.decision
    if decision is None:
        return "unknown (nothing decided yet)"
    if decision.action == "restart":
        head = f'<span class="bad">restart: {_e(decision.why)}</span>'
    elif decision.action == "paused":
        head = f'<span class="warn">paused: would restart: {_e(decision.why)}</span>'
    else:
        css = "ok" if decision.why == "healthy" else "warn"
        head = f'<span class="{css}">hold: {_e(decision.why)}</span>'
    age = "" if decision.age is None else f" ({_e(format_duration(decision.age))} ago)"
    return f'{head}<br><span class="detail">{_e(decision.detail)}{age}</span>'


def _cooldown(view: ContainerView, now: float) -> str:
    length = format_duration(view.effective_cooldown)
    if view.cooldown_left <= 0:
        return f"{_e(length)}, over"
    ends = now + view.cooldown_left
    left = format_duration(math.ceil(view.cooldown_left))
    return f"{_e(length)}, ends {_e(_clock(ends, now))} (in {_e(left)})"


def _pause(view: ContainerView, now: float) -> str:
    pause = view.pause
    if pause is None:
        return "not paused"
    reason = f'<br><span class="detail">{_e(pause.reason)}</span>' if pause.reason else ""
    return (
        f'<span class="warn">paused until {_e(_clock(pause.until, now))} '
        f"(another {_e(format_duration(pause.left))})</span>{reason}"
    )


def _restart_count(view: ContainerView) -> str:
    text = f"{view.restarts} since azwatch started"
    if view.failed_restarts:
        text += f", {view.failed_restarts} failed"
    if view.unhelped_restarts:
        text += f", {view.unhelped_restarts} in a row without recovery"
    return _e(text)


def _restarts(records: Sequence[RestartView], now: float) -> str:
    if not records:
        return '<p class="mute">No restart since azwatch started.</p>'
    rows = []
    for record in reversed(records):  # the newest first
        verdict = record.verdict
        if verdict is None:
            helped, css = "not judged yet", "mute"
        elif verdict.startswith("yes"):
            helped, css = verdict, "ok"
        elif verdict.startswith(("no", "restart failed")):
            helped, css = verdict, "bad"
        else:
            helped, css = verdict, "warn"
        rule = _e(record.rule) + (" (dry run)" if record.dry_run else "")
        rows.append(
            f'<tr><td class="when">{_e(_clock(record.time, now))}</td>'
            f'<td>{rule}<br><span class="detail">{_e(record.detail)}</span></td>'
            f'<td class="{css}">{_e(helped)}</td></tr>'
        )
    return (
        "<table>\n<tr><th>when</th><th>rule</th><th>helped</th></tr>\n"
        + "\n".join(rows)
        + "\n</table>"
    )


# --- the chart ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Scale:
    low: float
    high: float
    top: float
    bottom: float

    def y(self, value: float) -> float:
        if self.high <= self.low:
            return (self.top + self.bottom) / 2
        return self.bottom - (value - self.low) / (self.high - self.low) * (self.bottom - self.top)


def chart(points: Sequence[ChartPoint], view: ContainerView | None = None, now: float = 0) -> str:
    """The inline SVG of *points*: best and head above, lag below, restarts marked."""
    label = "chart of best block, network head and lag"
    if view is not None:
        label += f" of {view.name}"
    opening = f'<svg viewBox="0 0 {_WIDTH:g} {_HEIGHT:g}" role="img" aria-label="{_e(label)}">'
    if len(points) < 2:
        return (
            f'{opening}<text x="{_WIDTH / 2:g}" y="{_HEIGHT / 2:g}" text-anchor="middle">'
            "collecting data: a point per head poll</text></svg>"
        )
    start, end = points[0].at, max(points[-1].at, now)

    def x(at: float) -> float:
        if end <= start:
            return _RIGHT
        return _LEFT + (at - start) / (end - start) * (_RIGHT - _LEFT)

    blocks = [v for p in points for v in (p.best, p.head) if v is not None]
    lags = [p.lag for p in points if p.lag is not None]
    block_scale = _Scale(
        min(blocks, default=0), max(blocks, default=0), _BLOCKS_TOP, _BLOCKS_BOTTOM
    )
    # The lag panel starts at 0 (or below, for a node ahead of the reference) and leaves room
    # above its highest lag, so a steady lag is a line inside the frame, not on its edge.
    lag_low = min(0, *lags) if lags else 0
    lag_high = max(lags, default=0)
    lag_scale = _Scale(
        lag_low, lag_high + max(1, (lag_high - lag_low) // 10), _LAG_TOP, _LAG_BOTTOM
    )
    parts = [
        opening,
        f"<title>{_e(label)}</title>",
        f'<rect class="frame" x="{_LEFT:g}" y="{_BLOCKS_TOP:g}" width="{_RIGHT - _LEFT:g}" '
        f'height="{_BLOCKS_BOTTOM - _BLOCKS_TOP:g}"/>',
        f'<rect class="frame" x="{_LEFT:g}" y="{_LAG_TOP:g}" width="{_RIGHT - _LEFT:g}" '
        f'height="{_LAG_BOTTOM - _LAG_TOP:g}"/>',
        '<rect class="key-best" x="4" y="5" width="12" height="3"/>'
        '<text x="19" y="10">best</text>'
        '<rect class="key-head" x="52" y="5" width="12" height="3"/>'
        '<text x="67" y="10">network head</text>'
        '<rect class="key-lag" x="158" y="5" width="12" height="3"/>'
        '<text x="173" y="10">lag (blocks, lower panel)</text>',
    ]
    for series, values, scale in (
        ("best", [(p.at, p.best) for p in points], block_scale),
        ("head", [(p.at, p.head) for p in points], block_scale),
        ("lag", [(p.at, p.lag) for p in points], lag_scale),
    ):
        for segment in _segments(values):
            drawn = _thin([(x(at), scale.y(value)) for at, value in segment], MAX_DRAWN)
            coords = " ".join(f"{px:.1f},{py:.1f}" for px, py in drawn)
            parts.append(f'<polyline class="s-{series}" points="{coords}"/>')
    if view is not None:
        for record in view.recent_restarts:
            if start <= record.time <= end:
                rx = x(record.time)
                parts.append(
                    f'<line class="restart" x1="{rx:.1f}" y1="{_BLOCKS_TOP:g}" x2="{rx:.1f}" '
                    f'y2="{_LAG_BOTTOM:g}"><title>restart: {_e(record.rule)}</title></line>'
                )
    high = format_block(int(block_scale.high)) if blocks else ""
    low = format_block(int(block_scale.low)) if blocks else ""
    parts += [
        _axis_text(_LEFT + 3, _BLOCKS_TOP + 11, high),
        _axis_text(_LEFT + 3, _BLOCKS_BOTTOM - 4, low),
        _axis_text(_LEFT + 3, _LAG_TOP + 11, f"lag up to {lag_high}" if lags else "lag unknown"),
        _axis_text(_LEFT + 3, _LAG_BOTTOM - 4, f"{lag_low}" if lags else ""),
        _axis_text(_LEFT, _HEIGHT - 8, _clock(start, end)),
        _axis_text(_WIDTH / 2, _HEIGHT - 8, f"last {_span(end - start)}", "middle"),
        _axis_text(_RIGHT, _HEIGHT - 8, "now", "end"),
        "</svg>",
    ]
    return "".join(part for part in parts if part)


def _axis_text(x: float, y: float, text: str, anchor: str = "start") -> str:
    if not text:
        return ""
    return f'<text x="{x:g}" y="{y:g}" text-anchor="{anchor}">{_e(text)}</text>'


def _segments(values: Iterable[tuple[float, int | None]]) -> list[list[tuple[float, int]]]:
    """Runs of known values; an unknown one breaks the line."""
    segments: list[list[tuple[float, int]]] = []
    current: list[tuple[float, int]] = []
    for at, value in values:
        if value is None:
            if current:
                segments.append(current)
            current = []
        else:
            current.append((at, value))
    if current:
        segments.append(current)
    return segments


def _thin(coords: list[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    """At most about *limit* points with the same look: each of ``limit / 2`` columns keeps
    its lowest and highest point (in time order), so a spike is never thinned away."""
    if len(coords) <= limit:
        return coords
    columns = max(1, limit // 2)
    first, last = coords[0][0], coords[-1][0]
    width = (last - first) / columns or 1.0
    kept: list[tuple[float, float]] = []
    column: list[tuple[float, float]] = []
    index = 0
    for point in coords:
        at = min(columns - 1, int((point[0] - first) / width))
        if at != index and column:
            kept.extend(_extremes(column))
            column = []
        index = at
        column.append(point)
    kept.extend(_extremes(column))
    if kept[-1] != coords[-1]:
        kept.append(coords[-1])
    return kept


def _extremes(column: list[tuple[float, float]]) -> list[tuple[float, float]]:
    low = min(column, key=lambda point: point[1])
    high = max(column, key=lambda point: point[1])
    if low is high:
        return [low]
    return [low, high] if column.index(low) < column.index(high) else [high, low]


# --- words ----------------------------------------------------------------------------------


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _blocks(count: int) -> str:
    return f"{count} block" if count in (1, -1) else f"{count} blocks"


def _span(seconds: float) -> str:
    """A chart's span: to the second below an hour, to the minute above."""
    if seconds < 3600:
        return format_duration(seconds)
    hours, minutes = divmod(round(seconds / 60), 60)
    return f"{hours}h{minutes:02d}m"


def _ago(age: float | None) -> str:
    return "never" if age is None else f"{format_duration(age)} ago"


def _clock(at: float, now: float) -> str:
    """A Unix time as a person reads it: the time of day, and the date unless it is today."""
    moment, today = time.gmtime(at), time.gmtime(now)
    if moment[:3] == today[:3]:
        return time.strftime("%H:%M:%S UTC", moment)
    return time.strftime("%Y-%m-%d %H:%M UTC", moment)
