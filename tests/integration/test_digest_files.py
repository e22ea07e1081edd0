"""Markdown and HTML digests: content, escaping, the embedded chart, delivery records."""

from __future__ import annotations

import base64
import io
import re
import struct
from datetime import datetime, timedelta
from pathlib import Path

import matplotlib.image
import pytest
from sqlalchemy import Engine, select

from tests.digest_seed import Seed, hours
from triage.config import Config, Secrets
from triage.context import Context
from triage.db.schema import Delivery
from triage.digest import Digest, build_digest
from triage.sinks.documents import deliver_file
from triage.sinks.files import render_html, render_markdown
from triage.windows import Window

END = datetime(2025, 5, 12, 9)
WINDOW = Window.ending("1d", END)


@pytest.fixture
def ctx(engine: Engine, tmp_path: Path) -> Context:
    s = Seed(engine)
    login = s.theme("Login fails after upgrade")
    tricky = s.theme("<script>alert(1)</script> & *bold* [x](javascript:alert(1))")
    for day in range(8):  # a history for the chart: login grows day by day
        for n in range(8 - day):
            s.assign(s.item(END - timedelta(days=day) - hours(n + 1)), login)
    k1 = s.item(END - hours(2), "github", title="Crash <b>in</b> `init` | pipe *star*")
    k2 = s.item(END - hours(3), "stackexchange", title="Why does init crash?")
    s.assign(k1, tricky)
    s.assign(k2, tricky)
    s.analysis(k1, "bug", "critical", summary="Startup crash after <upgrade>")
    s.duplicate(k1, k2, END - hours(1), 0.87, "same stack trace in init()")
    s.item(END - hours(80), "stackexchange", title="Nobody answered this")
    s.assign(s.item(END - hours(5), "github", title="Bad link", url="javascript:alert(1)"), tricky)
    s.llm_call(END - hours(1), 2000, 500, 0.42)
    s.flush()
    cfg = Config.model_validate(
        {"database": {"url": str(engine.url)}, "digest": {"out_dir": str(tmp_path / "out")}}
    )
    return Context(config=cfg, secrets=Secrets())


def build(ctx: Context) -> Digest:
    with ctx.sessions() as session:
        return build_digest(session, ctx.config, WINDOW)


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, the first chunk of every PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_markdown_has_every_section_with_links(ctx: Context) -> None:
    md = render_markdown(build(ctx))
    assert md.startswith("# Triage digest: 2025-05-11 09:00 → 2025-05-12 09:00 UTC (1d)")
    for heading in (
        "## New items by source",
        "## By category",
        "## Top themes (2 of 2 active)",
        "## High-priority bugs (1)",
        "## Possible duplicates (1)",
        "## Unanswered questions older than 48h (1)",
        "## Model spend",
    ):
        assert heading in md
    assert "| GitHub | 10 | 7 | +3 |" in md  # login's 8 of today, the crash and the bad link
    assert "| Stack Overflow | 1 | 0 | +1 |" in md
    assert "](https://stackoverflow.com/q/" in md and "Nobody answered this" in md
    assert "(87%): same stack trace in init()" in md
    assert "1 model call, 2,000 input tokens (500 cached), 500 output tokens, $0.42" in md


def test_markdown_escapes_untrusted_text(ctx: Context) -> None:
    md = render_markdown(build(ctx))
    assert r"Crash \<b\>in\</b\> \`init\` \| pipe \*star\*" in md
    assert "<script>" not in md and r"\<script\>" in md
    assert "[x](javascript:" not in md and r"\[x\](javascript:" in md
    assert "Bad link (" in md and "[Bad link]" not in md  # shown, not linked


def test_html_is_escaped_and_self_contained(ctx: Context) -> None:
    page = render_html(build(ctx))
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt; &amp;" in page
    assert "Crash &lt;b&gt;in&lt;/b&gt;" in page
    assert 'href="javascript:' not in page
    assert '<a href="https://github.com/acme/widgets/issues/' in page
    assert "same stack trace in init()" in page and "Nobody answered this" in page
    external = re.findall(r'(?:src|href)="(?!data:|https://(?:github|stackoverflow)\.)', page)
    assert external == []  # no stylesheet, script or image fetched from elsewhere


def test_html_chart_is_a_real_png(ctx: Context) -> None:
    page = render_html(build(ctx))
    [data] = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]+">', page)
    png = base64.b64decode(data, validate=True)
    assert png_size(png) == (900, 450)
    pixels = matplotlib.image.imread(io.BytesIO(png), format="png")
    assert pixels.shape[:2] == (450, 900)
    assert len({tuple(p) for p in pixels[::25, ::25].reshape(-1, pixels.shape[2])}) > 3


def test_an_empty_digest_leaves_out_its_empty_sections_alike_in_markdown_and_html(
    engine: Engine,
) -> None:
    ctx = Context(
        config=Config.model_validate({"database": {"url": str(engine.url)}}), secrets=Secrets()
    )
    d = build(ctx)
    page, text = render_html(d), render_markdown(d)
    assert "data:image/png" not in page
    for doc in (page, text):
        for heading in ("Top themes", "High-priority bugs", "Possible duplicates", "By category"):
            assert heading not in doc
        assert "nothing stored yet" in doc


def test_files_are_written_recorded_and_overwritten(ctx: Context, tmp_path: Path) -> None:
    d = build(ctx)
    first = deliver_file(ctx, d, "markdown", None, dry_run=False)
    path = tmp_path / "out" / "digest-2025-05-12T0900Z-1d.md"
    assert first == f"wrote {path}" and path.read_text().startswith("# Triage digest")
    path.write_text("stale")
    deliver_file(ctx, d, "markdown", None, dry_run=False)
    assert path.read_text().startswith("# Triage digest")  # a rerun rewrites the same file
    html_path = tmp_path / "custom.html"
    deliver_file(ctx, d, "html", html_path, dry_run=False)
    assert html_path.read_text().startswith("<!DOCTYPE html>")
    with ctx.sessions() as s:
        rows = {(r.sink, r.target) for r in s.scalars(select(Delivery))}
    assert rows == {("markdown", str(path.resolve())), ("html", str(html_path.resolve()))}


def test_dry_run_writes_nothing(ctx: Context, tmp_path: Path) -> None:
    message = deliver_file(ctx, build(ctx), "html", None, dry_run=True)
    assert message.startswith("would write ") and "bytes" in message
    assert not (tmp_path / "out").exists()
    with ctx.sessions() as s:
        assert s.scalars(select(Delivery)).all() == []
