"""Figures of the UI: plotly for the page, matplotlib for SVG, PDF and PNG downloads.

plotly's static export needs kaleido and a Chromium; matplotlib needs neither, so every download is
drawn by matplotlib from the same rows (the page's axes, the front highlighted).

Example:
    >>> rows = [{"label": "int8", "runtime": "torch", "on_front": True, "accuracy": 0.5,
    ...          "latency_ms": 40.0, "status": "ok"}]
    >>> figure_bytes(rows, "latency_ms", "accuracy", "svg")[:5]
    b'<?xml'
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from agentic_compression.ui.data import AXES


def _value(row: dict[str, Any], name: str) -> float:
    return float(row[name]) * AXES[name][1]


def measured(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r["status"] == "ok" and r.get("accuracy") is not None]


def scatter(rows: Sequence[dict[str, Any]], x: str, y: str, z: str | None = None) -> Any:
    """2-D (or, with ``z``, 3-D) plotly scatter, one trace per runtime, front members larger."""
    import plotly.graph_objects as go

    fig = go.Figure()
    ok = measured(rows)
    for runtime in sorted({r["runtime"] for r in ok}):
        mine = [r for r in ok if r["runtime"] == runtime]
        text = [f"#{r['trial']} {r['label']}" for r in mine]
        sizes = [14 if r["on_front"] else 8 for r in mine]
        symbols = ["diamond" if r["on_front"] else "circle" for r in mine]
        if z is None:
            fig.add_trace(
                go.Scatter(
                    x=[_value(r, x) for r in mine],
                    y=[_value(r, y) for r in mine],
                    mode="markers",
                    name=runtime,
                    text=text,
                    customdata=[r["trial"] for r in mine],
                    marker={"size": sizes, "symbol": symbols},
                    hovertemplate="%{text}<br>%{x:.4g}, %{y:.4g}<extra>%{fullData.name}</extra>",
                )
            )
        else:
            fig.add_trace(
                go.Scatter3d(
                    x=[_value(r, x) for r in mine],
                    y=[_value(r, y) for r in mine],
                    z=[_value(r, z) for r in mine],
                    mode="markers",
                    name=runtime,
                    text=text,
                    marker={"size": [s / 2 for s in sizes]},
                )
            )
    if z is None:
        fig.update_layout(xaxis_title=AXES[x][0], yaxis_title=AXES[y][0])
    else:
        fig.update_layout(
            scene={"xaxis_title": AXES[x][0], "yaxis_title": AXES[y][0], "zaxis_title": AXES[z][0]}
        )
    fig.update_layout(height=480, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def parallel(rows: Sequence[dict[str, Any]]) -> Any:
    """Parallel coordinates over the five objectives, front members coloured."""
    import plotly.graph_objects as go

    ok = measured(rows)
    return go.Figure(
        go.Parcoords(
            line={"color": [1 if r["on_front"] else 0 for r in ok], "colorscale": "Viridis"},
            dimensions=[
                {"label": AXES[name][0], "values": [_value(r, name) for r in ok]} for name in AXES
            ],
        ),
        layout={"margin": {"l": 80, "r": 80, "t": 60}},  # room for the end axes' titles
    )


def figure_bytes(rows: Sequence[dict[str, Any]], x: str, y: str, fmt: str) -> bytes:
    """The 2-D front as ``svg``, ``pdf`` or ``png`` bytes (matplotlib, no browser needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = measured(rows)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    try:
        for runtime in sorted({r["runtime"] for r in ok}):
            mine = [r for r in ok if r["runtime"] == runtime]
            ax.scatter([_value(r, x) for r in mine], [_value(r, y) for r in mine], label=runtime)
            for r in mine:
                if r["on_front"]:
                    ax.annotate(r["label"], (_value(r, x), _value(r, y)), fontsize=7)
        ax.set_xlabel(AXES[x][0])
        ax.set_ylabel(AXES[y][0])
        ax.legend(fontsize=8)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=150)
        return buffer.getvalue()
    finally:
        plt.close(fig)
