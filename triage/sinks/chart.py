"""Theme volume over recent windows as a PNG (matplotlib's Agg canvas; no display, no pyplot)."""

from __future__ import annotations

import io

from triage.digest import Volume

WIDTH_IN, HEIGHT_IN, DPI = 9.0, 4.5, 100
MAX_LABEL = 48


def _label(title: str) -> str:
    """Legend text that matplotlib shows literally (no mathtext, no hidden `_` labels)."""
    text = title if len(title) <= MAX_LABEL else title[: MAX_LABEL - 1] + "…"
    text = text.replace("$", r"\$")
    return " " + text if text.startswith("_") else text


def has_data(volume: Volume) -> bool:
    return any(sum(t.counts) for t in volume.themes)


def theme_volume_png(volume: Volume, title: str = "Theme volume per window") -> bytes:
    """A stacked bar chart: one bar per window, one colour per top theme."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    labels = [end.strftime("%b %d %H:%M") for end in volume.window_ends]
    positions = list(range(len(labels)))
    bottoms = [0] * len(labels)
    for theme in volume.themes:
        ax.bar(positions, theme.counts, bottom=bottoms, label=_label(theme.title), width=0.7)
        bottoms = [b + c for b, c in zip(bottoms, theme.counts, strict=True)]
    if not volume.themes:
        ax.text(0.5, 0.5, "no themed items yet", ha="center", va="center", transform=ax.transAxes)
    ax.set_xticks(positions, labels, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("items created")
    ax.set_xlabel("window ending (UTC)", fontsize=8)
    ax.set_title(title)
    if volume.themes:
        handles, names = ax.get_legend_handles_labels()  # top of the legend = top of the stack
        fig.legend(handles[::-1], names[::-1], loc="outside right upper", fontsize=8, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()
