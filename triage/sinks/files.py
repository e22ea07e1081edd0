"""Markdown and self-contained HTML renderings of a Digest, and writing them to a file."""

from __future__ import annotations

import base64
import html
import os
import re
from pathlib import Path

from triage.digest import CountRow, Digest, ItemRef
from triage.errors import DeliveryError
from triage.sinks import chart
from triage.sinks.formatting import (
    MAX_REASON,
    MAX_TITLE,
    duplicate_note,
    duplicates_heading,
    headline,
    item_meta,
    safe_url,
    sections,
    shorten,
    signed,
    source_name,
    spend_line,
    stamp,
    theme_line,
    window_line,
)

# -- Markdown ------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")


def md(text: str) -> str:
    """Untrusted text as literal Markdown: no emphasis, links, HTML or table breaks."""
    return _MD_SPECIAL.sub(r"\\\1", text)


def md_link(ref: ItemRef) -> str:
    title = md(shorten(ref.title, MAX_TITLE))
    url = safe_url(ref.url)
    if url is None:
        return title
    url = url.replace("(", "%28").replace(")", "%29").replace(" ", "%20")
    return f"[{title}]({url})"


def _md_table(title: str, rows: list[CountRow]) -> list[str]:
    out = [f"## {title}", "", "| | this window | previous | change |", "|---|---:|---:|---:|"]
    for r in rows:
        out.append(
            f"| {md(source_name(r.name))} | {r.current:,} | {r.previous:,} | {signed(r.delta)} |"
        )
    return [*out, ""]


def _md_more(n: int) -> list[str]:
    return [f"- … and {n} more (`triage export` lists them all)"] if n > 0 else []


def render_markdown(d: Digest) -> str:
    shown = sections(d)
    out = [f"# Triage digest: {window_line(d)}", "", f"**{headline(d)}**", ""]
    if "by_source" in shown:
        out += _md_table("New items by source", d.by_source)
    if "by_category" in shown:
        out += _md_table("By category", d.by_category)
    if "themes" in shown:
        out += [f"## Top themes ({len(d.themes)} of {d.active_themes} active)", ""]
        for i, t in enumerate(d.themes, 1):
            title = md(shorten(t.title, MAX_TITLE))
            out.append(f"{i}. **{title}** (theme {t.id}): {theme_line(t)}")
            out += [f"    - {md_link(e)} ({md(item_meta(e))})" for e in t.examples]
        out.append("")
    if "high_priority" in shown:
        out += [f"## High-priority bugs ({d.high_priority.total})", ""]
        for ref in d.high_priority.items:
            summary = f": {md(shorten(ref.summary, MAX_REASON))}" if ref.summary else ""
            out.append(f"- **{md(ref.priority or '')}** {md_link(ref)}{summary}")
        out += [*_md_more(d.high_priority.more), ""]
    if "duplicates" in shown:
        out += [f"## {duplicates_heading(d)}", ""]
        for dup in d.duplicates:
            reason = md(shorten(dup.reason, MAX_REASON))
            out.append(f"- {md_link(dup.a)} ↔ {md_link(dup.b)} ({duplicate_note(dup)}): {reason}")
        out += [*_md_more(d.duplicates_more), ""]
    if "unanswered" in shown:
        hours = f"{d.unanswered_after_hours:g}"
        out += [f"## Unanswered questions older than {hours}h ({d.unanswered.total})", ""]
        out += [f"- {md_link(r)} (asked {stamp(r.created_at)})" for r in d.unanswered.items]
        out += [*_md_more(d.unanswered.more), ""]
    if "spend" in shown:
        out += ["## Model spend", "", spend_line(d), ""]
    out += [f"_Generated {stamp(d.generated_at)} UTC._", ""]
    return "\n".join(out)


# -- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;padding:.2rem .6rem}
td.n{text-align:right}h1{font-size:1.5rem}h2{font-size:1.2rem;margin-top:2rem}
.meta{color:#666;font-size:.9em}img{max-width:100%;height:auto}
"""


def h(text: str) -> str:
    return html.escape(text, quote=True)


def h_link(ref: ItemRef) -> str:
    title = h(shorten(ref.title, MAX_TITLE))
    url = safe_url(ref.url)
    return title if url is None else f'<a href="{h(url)}">{title}</a>'


def _h_table(title: str, rows: list[CountRow]) -> list[str]:
    out = [f"<h2>{h(title)}</h2>", "<table><tr><th></th><th>this window</th>"]
    out[-1] += "<th>previous</th><th>change</th></tr>"
    for r in rows:
        out.append(
            f'<tr><td>{h(source_name(r.name))}</td><td class="n">{r.current:,}</td>'
            f'<td class="n">{r.previous:,}</td><td class="n">{h(signed(r.delta))}</td></tr>'
        )
    return [*out, "</table>"]


def _h_more(n: int) -> str:
    return f"<li>… and {n} more (<code>triage export</code> lists them all)</li>" if n > 0 else ""


def _h_chart(d: Digest, png: bytes | None) -> list[str]:
    if png is None:
        return ["<p>No themed items in recent windows yet.</p>"]
    data = base64.b64encode(png).decode("ascii")
    alt = f"Items per theme over the last {len(d.volume.window_ends)} windows of {d.window}"
    return [f'<img src="data:image/png;base64,{data}" alt="{h(alt)}">']


def render_html(d: Digest, png: bytes | None = None) -> str:
    """One file with everything inline: styles, escaped text, the chart as a data URI."""
    if png is None and chart.has_data(d.volume):
        png = chart.theme_volume_png(d.volume)
    out = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Triage digest {h(window_line(d))}</title><style>{_CSS}</style></head><body>",
        f"<h1>Triage digest: {h(window_line(d))}</h1>",
        f"<p><strong>{h(headline(d))}</strong></p>",
    ]
    shown = sections(d)
    if "by_source" in shown:
        out += _h_table("New items by source", d.by_source)
    if "by_category" in shown:
        out += _h_table("By category", d.by_category)
    if "themes" in shown:
        out += [f"<h2>Top themes ({len(d.themes)} of {d.active_themes} active)</h2>"]
        out += _h_chart(d, png)
        out.append("<ol>")
        for t in d.themes:
            examples = "".join(
                f'<li>{h_link(e)} <span class="meta">{h(item_meta(e))}</span></li>'
                for e in t.examples
            )
            out.append(
                f"<li><strong>{h(shorten(t.title, MAX_TITLE))}</strong> "
                f'<span class="meta">theme {t.id}</span>: {h(theme_line(t))}'
                f"<ul>{examples}</ul></li>"
            )
        out.append("</ol>")
    if "high_priority" in shown:
        out += [f"<h2>High-priority bugs ({d.high_priority.total})</h2>", "<ul>"]
        for ref in d.high_priority.items:
            summary = f": {h(shorten(ref.summary, MAX_REASON))}" if ref.summary else ""
            out.append(f"<li><strong>{h(ref.priority or '')}</strong> {h_link(ref)}{summary}</li>")
        out += [_h_more(d.high_priority.more), "</ul>"]
    if "duplicates" in shown:
        out += [f"<h2>{h(duplicates_heading(d))}</h2>", "<ul>"]
        for dup in d.duplicates:
            out.append(
                f"<li>{h_link(dup.a)} ↔ {h_link(dup.b)} ({h(duplicate_note(dup))}): "
                f"{h(shorten(dup.reason, MAX_REASON))}</li>"
            )
        out += [_h_more(d.duplicates_more), "</ul>"]
    if "unanswered" in shown:
        hours = f"{d.unanswered_after_hours:g}"
        out += [f"<h2>Unanswered questions older than {hours}h ({d.unanswered.total})</h2>"]
        out += [
            "<ul>",
            *(f"<li>{h_link(r)} (asked {stamp(r.created_at)})</li>" for r in d.unanswered.items),
        ]
        out += [_h_more(d.unanswered.more), "</ul>"]
    if "spend" in shown:
        out += ["<h2>Model spend</h2>", f"<p>{h(spend_line(d))}</p>"]
    out += [f'<p class="meta">Generated {stamp(d.generated_at)} UTC.</p>', "</body></html>", ""]
    return "\n".join(line for line in out if line)


# -- writing -------------------------------------------------------------------------------


def default_path(out_dir: str, d: Digest, fmt: str) -> Path:
    ext = "md" if fmt == "markdown" else "html"
    return Path(out_dir) / f"digest-{d.end:%Y-%m-%dT%H%M}Z-{d.window}.{ext}"


def write_file(path: Path, content: str) -> None:
    """Write atomically: a reader never sees half a digest, a rerun simply replaces it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # same folder: the rename is atomic
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(content, encoding="utf-8")  # created with the usual umask, unlike mkstemp
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DeliveryError(f"cannot write digest to {path}: {exc.strerror or exc}") from None
