"""Pareto plots of a run: interactive HTML (plotly) and a vector SVG for papers (matplotlib).

Three panels put accuracy against each cost a user trades it for: CO2 per 1k generated tokens,
decode latency and serialized size. The front is the 5-objective front (accuracy, latency, memory,
energy, CO2), so in any one 2-D panel a front member may look dominated: it wins on another axis.
Failed trials are not plotted (they have no measurements); infeasible ones are drawn as crosses.

plotly's own SVG export needs kaleido and a Chromium browser, which many machines lack; matplotlib
writes SVG with no browser, so the SVG comes from matplotlib (same data, same panels).

Example:
    >>> html, svg = write_pareto_plots(run_dir, "r1", trials, frontier)   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from agentic_compression.paths import atomic_output
from agentic_compression.results.analysis import FrontierAnalysis
from agentic_compression.results.records import TrialRecord

#: (objective name, axis title, factor from the objective's unit to the axis unit)
PANELS = (
    ("co2_kg_per_1k_tokens", "CO2 per 1k tokens (g)", 1000.0),
    ("latency_ms", "decode latency (ms/token)", 1.0),
    ("memory_bytes", "serialized size (MB)", 1e-6),
)


@dataclass(frozen=True)
class _Marker:
    label: str
    accuracy: float
    values: tuple[float, ...]
    group: str  # "front", "feasible", "infeasible"
    knee: bool


def _markers(trials: Sequence[TrialRecord], frontier: FrontierAnalysis) -> list[_Marker]:
    front, feasible = set(frontier.front_ids), set(frontier.feasible_ids)
    out = []
    for trial in trials:
        if trial.objectives is None:
            continue
        name = trial.recipe.label
        group = (
            "front"
            if trial.candidate_id in front
            else "feasible"
            if trial.candidate_id in feasible
            else "infeasible"
        )
        out.append(
            _Marker(
                label=f"#{trial.number} {name or 'base'}",
                accuracy=trial.objectives["accuracy"],
                values=tuple(trial.objectives[key] * factor for key, _, factor in PANELS),
                group=group,
                knee=trial.candidate_id == frontier.knee_id,
            )
        )
    return out


_STYLE = {
    "front": ("Pareto front", "#1b9e77", "circle", "o"),
    "feasible": ("dominated", "#9e9e9e", "circle-open", "o"),
    "infeasible": ("infeasible", "#d95f02", "x", "x"),
}


def _html(path: Path, title: str, markers: list[_Marker]) -> None:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figure = make_subplots(rows=1, cols=len(PANELS), shared_yaxes=True)
    for column, (_, axis_title, _) in enumerate(PANELS, start=1):
        for group, (name, color, symbol, _) in _STYLE.items():
            chosen = [m for m in markers if m.group == group]
            figure.add_trace(
                go.Scatter(
                    x=[m.values[column - 1] for m in chosen],
                    y=[m.accuracy for m in chosen],
                    text=[m.label + (" (knee)" if m.knee else "") for m in chosen],
                    mode="markers",
                    name=name,
                    legendgroup=group,
                    showlegend=column == 1,
                    marker={"color": color, "symbol": symbol, "size": 10},
                    hovertemplate="%{text}<br>x=%{x:.4g}<br>accuracy=%{y:.4f}<extra></extra>",
                ),
                row=1,
                col=column,
            )
        figure.update_xaxes(title_text=axis_title, row=1, col=column)
    figure.update_yaxes(title_text="accuracy", row=1, col=1)
    figure.update_layout(title=title, template="plotly_white", height=480)
    # Self-contained (plotly.js inlined) so the file opens offline.
    with atomic_output(path) as staging:
        figure.write_html(staging, include_plotlyjs=True, full_html=True)


def _svg(path: Path, title: str, markers: list[_Marker]) -> None:
    from matplotlib import rc_context
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.2 * len(PANELS), 4.0), layout="constrained")
    axes = figure.subplots(1, len(PANELS), sharey=True)
    for column, (_, axis_title, _) in enumerate(PANELS):
        ax = axes[column]
        for group, (name, color, _, mpl_marker) in _STYLE.items():
            chosen = [m for m in markers if m.group == group]
            if not chosen:
                continue
            xs, ys = [m.values[column] for m in chosen], [m.accuracy for m in chosen]
            if mpl_marker == "x":
                ax.scatter(xs, ys, label=name, marker="x", color=color, s=36)
            else:
                face = "none" if group == "feasible" else color
                ax.scatter(xs, ys, label=name, marker="o", facecolors=face, edgecolors=color, s=36)
            if group == "front":
                for m in chosen:
                    ax.annotate(m.label + (" (knee)" if m.knee else ""),
                                (m.values[column], m.accuracy), fontsize=7,
                                xytext=(4, 3), textcoords="offset points")  # fmt: skip
        ax.set_xlabel(axis_title)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("accuracy")
    axes[0].legend(fontsize=8)
    figure.suptitle(title)
    # Text kept as text (editable, searchable); a fixed salt keeps the file reproducible.
    with (
        rc_context({"svg.fonttype": "none", "svg.hashsalt": "agentic-compression"}),
        atomic_output(path) as staging,
    ):
        figure.savefig(staging, format="svg")


def write_pareto_plots(
    run_dir: Path, run_id: str, trials: Sequence[TrialRecord], frontier: FrontierAnalysis
) -> tuple[Path, Path]:
    """Write ``pareto.html`` and ``pareto.svg`` under ``run_dir``; returns their paths."""
    markers = _markers(trials, frontier)
    title = f"run {run_id}: accuracy vs costs ({len(markers)} measured trials)"
    html, svg = run_dir / "pareto.html", run_dir / "pareto.svg"
    _html(html, title, markers)
    _svg(svg, title, markers)
    return html, svg
