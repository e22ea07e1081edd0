"""`triage eval` output: rich tables for people, JSON for scripts, an HTML page with pictures.

JSON shape: the first provider's `mean_f1` (mean macro-F1 across repositories) and `per_repo`
are top-level, so scripts read one number whatever else was compared; `providers` holds one
full report per provider, in the order given on the command line.
"""

from __future__ import annotations

import base64
import html
import io
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.table import Table

from triage.analysis.evaluate.run import UNANSWERED, ProviderReport, confusion_columns

RELIABILITY_BINS = 10


def cost(report: ProviderReport) -> dict[str, Any]:
    calls = report.calls
    return {
        "calls": len(calls),
        "input_tokens": sum(c.input_tokens for c in calls),
        "cached_tokens": sum(c.cached_tokens for c in calls),
        "output_tokens": sum(c.output_tokens for c in calls),
        "usd": round(sum(c.cost_usd for c in calls), 6),
        "usd_per_1000_items": round(report.usd_per_1000, 4),
        "thinking_tokens": sum(c.thinking_tokens for c in calls),
    }


def provider_json(report: ProviderReport) -> dict[str, Any]:
    return {
        "provider": report.provider,
        "model": report.model,
        "shots": report.shots,
        "mean_f1": round(report.mean_f1, 4),
        "per_repo": {
            repo: {
                "macro_f1": round(r.macro_f1, 4),
                "n": r.n,
                "labels": {lb: _rounded(asdict(s)) for lb, s in r.labels.items()},
                "confusion": {"labels": r.confusion_labels, "matrix": r.confusion},
            }
            for repo, r in report.per_repo.items()
        },
        "labels": {lb: _rounded(asdict(s)) for lb, s in report.labels.items()},
        "thresholds": {lb: _rounded(asdict(t)) for lb, t in report.thresholds.items()},
        "cost": cost(report),
        "seconds": {
            "train": round(report.train_seconds, 3),
            "predict": round(report.predict_seconds, 3),
        },
        "items": len(report.predictions),
        "unanswered": report.unanswered,
        "stopped": report.stopped,
        "answered_by": report.notes,
    }


def _rounded(d: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in d.items()}


def to_json(reports: Sequence[ProviderReport], meta: dict[str, Any]) -> dict[str, Any]:
    providers = [provider_json(r) for r in reports]
    first = providers[0]
    return {
        "provider": first["provider"],
        "mean_f1": first["mean_f1"],
        "per_repo": {repo: v["macro_f1"] for repo, v in first["per_repo"].items()},
        **meta,
        "providers": providers,
    }


def render(console: Console, reports: Sequence[ProviderReport], meta: dict[str, Any]) -> None:
    """Side-by-side tables: macro-F1 per repository, per-label scores, cost, thresholds."""
    names = [r.label for r in reports]
    summary = Table(title=f"macro-F1 per repository ({meta.get('data', '')})")
    summary.add_column("repository")
    summary.add_column("items", justify="right")
    for name in names:
        summary.add_column(name, justify="right")
    for repo in reports[0].per_repo:
        cells = [f"{r.per_repo[repo].macro_f1:.3f}" if repo in r.per_repo else "-" for r in reports]
        summary.add_row(repo, str(reports[0].per_repo[repo].n), *cells)
    summary.add_row("[bold]mean", "", *[f"[bold]{r.mean_f1:.3f}" for r in reports])
    console.print(summary)

    labels = Table(title="per label, all repositories (precision / recall / F1)")
    labels.add_column("label")
    for name in names:
        labels.add_column(name, justify="right")
    for lb in reports[0].labels:
        cells = []
        for r in reports:
            s = r.labels.get(lb)
            cells.append(f"{s.precision:.2f} / {s.recall:.2f} / {s.f1:.2f}" if s else "-")
        labels.add_row(lb, *cells)
    console.print(labels)

    for r in reports:
        _confusion(console, r)

    spend = Table(title="cost and time")
    for col in (
        "provider",
        "model",
        "calls",
        "tokens in",
        "tokens out",
        "est. $",
        "$ / 1,000 items",
        "train s",
        "classify s",
        "unanswered",
    ):
        spend.add_column(col, justify="left" if col in ("provider", "model") else "right")
    for r in reports:
        c = cost(r)
        spend.add_row(
            r.label,
            r.model,
            str(c["calls"]),
            f"{c['input_tokens']:,}",
            f"{c['output_tokens']:,}",
            f"{c['usd']:.4f}",
            f"{r.usd_per_1000:.4f}",
            f"{r.train_seconds:.1f}",
            f"{r.predict_seconds:.1f}",
            str(r.unanswered),
        )
    console.print(spend)

    target = meta.get("target_precision", 0.9)
    th = Table(
        title=f"confidence needed for precision >= {target:.2f} (coverage: share of the"
        " label's predictions that clear it)"
    )
    th.add_column("provider")
    th.add_column("label")
    for col in ("threshold", "precision", "coverage", "recall"):
        th.add_column(col, justify="right")
    for r in reports:
        for lb, t in r.thresholds.items():
            if t.threshold is None:
                th.add_row(r.label, lb, "never", f"best {t.precision:.2f}", "0.00", "0.00")
            else:
                th.add_row(
                    r.label,
                    lb,
                    f"{t.threshold:.3f}",
                    f"{t.precision:.2f}",
                    f"{t.coverage:.2f}",
                    f"{t.recall:.2f}",
                )
    console.print(th)
    for r in reports:
        if r.notes:  # a fallback answered some items: the scores are partly the fallback's
            counted = ", ".join(f"{n} by the {how}" for how, n in sorted(r.notes.items()))
            console.print(f"{r.provider}: of {len(r.predictions)} items, {counted}")


def _confusion(console: Console, report: ProviderReport) -> None:
    """All repositories together; every item in its row, whatever the provider answered."""
    rows = list(report.labels)
    columns = confusion_columns(rows, report.predictions)
    counts = Counter((p.truth, p.predicted or UNANSWERED) for p in report.predictions)
    table = Table(title=f"{report.label}: confusion (rows: human label, columns: predicted)")
    table.add_column("")
    for lb in columns:
        table.add_column(lb, justify="right")
    for t in rows:
        table.add_row(t, *[str(counts[(t, p)]) for p in columns])
    console.print(table)


# ---- HTML -------------------------------------------------------------------------------------


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def reliability_points(report: ProviderReport) -> list[tuple[float, float, int]]:
    """(mean confidence, share correct, items) per equal-width confidence bin that has items."""
    bins: dict[int, list[tuple[float, bool]]] = {}
    for p in report.predictions:
        if p.confidence is not None:
            b = min(int(p.confidence * RELIABILITY_BINS), RELIABILITY_BINS - 1)
            bins.setdefault(b, []).append((p.confidence, p.truth == p.predicted))
    return [
        (
            sum(c for c, _ in bins[b]) / len(bins[b]),
            sum(ok for _, ok in bins[b]) / len(bins[b]),
            len(bins[b]),
        )
        for b in sorted(bins)
    ]


def reliability_png(reports: Sequence[ProviderReport]) -> str:
    """Accuracy against confidence, one line per provider; a dot's area is its bin's items."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for r in reports:
        points = reliability_points(r)
        if not points:
            continue
        xs, ys, ns = zip(*points, strict=True)
        (line,) = ax.plot(xs, ys, label=r.provider)
        # a bin of two items should not look as sure as a bin of two hundred
        ax.scatter(xs, ys, s=[12 + 240 * n / max(ns) for n in ns], color=line.get_color())
    ax.set_xlabel("confidence")
    ax.set_ylabel("share correct")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_title("Reliability (dot area: items in the bin)")
    ax.legend(loc="upper left")
    url = _png(fig)
    plt.close(fig)
    return url


def confusion_png(title: str, order: list[str], matrix: list[list[int]]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    size = 1.2 + 0.8 * len(order)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(order)), labels=order, rotation=45, ha="right")
    ax.set_yticks(range(len(order)), labels=order)
    ax.set_xlabel("predicted")
    ax.set_ylabel("human label")
    peak = max((v for row in matrix for v in row), default=0)
    for i, row in enumerate(matrix):
        for j, v in enumerate(row):
            ax.text(
                j, i, str(v), ha="center", va="center", color="white" if v > peak / 2 else "black"
            )
    ax.set_title(title, fontsize=9)
    url = _png(fig)
    plt.close(fig)
    return url


def to_html(reports: Sequence[ProviderReport], meta: dict[str, Any]) -> str:
    """A self-contained page: tables, a reliability diagram and confusion matrices as PNGs."""
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>triage eval</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "td:first-child,th:first-child{text-align:left}img{margin:4px}</style></head><body>",
        f"<h1>triage eval</h1><p>{esc(str(meta.get('data', '')))}: {meta.get('train_size')}"
        f" training items, {meta.get('test_size')} test items.</p>",
        "<h2>Macro-F1 per repository</h2><table><tr><th>repository</th>",
        *[f"<th>{esc(r.provider)} ({esc(r.model)})</th>" for r in reports],
        "</tr>",
    ]
    for repo in reports[0].per_repo:
        cells = "".join(
            f"<td>{r.per_repo[repo].macro_f1:.3f}</td>" if repo in r.per_repo else "<td>-</td>"
            for r in reports
        )
        parts.append(f"<tr><td>{esc(repo)}</td>{cells}</tr>")
    parts.append("<tr><th>mean</th>" + "".join(f"<th>{r.mean_f1:.3f}</th>" for r in reports))
    parts.append(
        "</tr></table><h2>Cost and time</h2><table><tr><th>provider</th><th>calls</th>"
        "<th>tokens in</th><th>tokens out</th><th>est. $</th><th>seconds</th></tr>"
    )
    for r in reports:
        c = cost(r)
        parts.append(
            f"<tr><td>{esc(r.provider)}</td><td>{c['calls']}</td><td>{c['input_tokens']}</td>"
            f"<td>{c['output_tokens']}</td><td>{c['usd']:.4f}</td>"
            f"<td>{r.train_seconds + r.predict_seconds:.1f}</td></tr>"
        )
    parts.append("</table><h2>Reliability</h2>")
    parts.append(f"<img alt='reliability diagram' src='{reliability_png(reports)}'>")
    parts.append("<h2>Confusion matrices</h2>")
    for r in reports:
        parts.append(f"<h3>{esc(r.provider)}</h3><div>")
        for repo, s in r.per_repo.items():
            url = confusion_png(f"{r.provider}: {repo}", s.confusion_labels, s.confusion)
            parts.append(f"<img alt='confusion matrix {esc(repo)}' src='{url}'>")
        parts.append("</div>")
    parts.append("</body></html>")
    return "\n".join(parts)
