"""One figure per RQ (SVG for papers, PNG for pages), drawn from the RQ's JSON alone.

matplotlib with the Agg backend, a fixed SVG hash salt and no timestamps, so re-rendering the same
JSON writes the same files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentic_compression.paths import atomic_output

Drawer = Callable[[Any, dict[str, Any]], None]


def _scatter_accuracy_co2(ax: Any, groups: dict[str, list[dict[str, Any]]], title: str) -> None:
    for (name, trials), marker in zip(groups.items(), "os^Dv<>", strict=False):
        ok = [t for t in trials if t["status"] == "ok" and t["objectives"]]
        ax.scatter(
            [t["objectives"]["co2_kg_per_1k_tokens"] * 1000 for t in ok],
            [t["objectives"]["accuracy"] for t in ok],
            marker=marker,
            label=f"{name} ({len(ok)})",
            alpha=0.75,
        )
    ax.set_xlabel("CO2 per 1k generated tokens (g)")
    ax.set_ylabel("accuracy")
    ax.set_title(title)
    ax.legend(fontsize=8)


def draw_rq1(ax: Any, data: dict[str, Any]) -> None:
    arms = data["arms"]
    groups = {
        "agentic": [t for ts in arms["agentic"]["by_seed"].values() for t in ts],
        "static": arms["static"]["trials"],
        "dynamic": arms["dynamic"]["trials"],
    }
    _scatter_accuracy_co2(ax, groups, "RQ1: trials of each arm")
    ax.axhline(data["accuracy_threshold"], linestyle="--", linewidth=0.8, color="grey")


def draw_rq2(ax: Any, data: dict[str, Any]) -> None:
    from agentic_compression.experiments import rq2

    stats = rq2.summary(data)
    if "error" in stats:
        ax.set_title(stats["error"])
        return
    base = data["baseline"]["objectives"]
    candidates = rq2._candidates(data)
    for runtime, marker in zip(data["options"]["runtimes"], "os^Dv", strict=False):
        mine = [rq2._savings(c, base) for c in candidates if c["runtime"] == runtime]
        ax.scatter(
            [m["retention"] * 100 for m in mine],
            [m["energy_saving"] * 100 for m in mine],
            marker=marker,
            label=runtime,
            alpha=0.75,
        )
    ax.set_xlabel("accuracy retention (% of the uncompressed model)")
    ax.set_ylabel("energy per 1k tokens saved (%)")
    ax.set_title("RQ2: savings vs retention, per runtime")
    ax.legend(fontsize=8)


def draw_rq3(ax: Any, data: dict[str, Any]) -> None:
    from agentic_compression.experiments import rq3

    groups = {
        scheme: [t for ts in runs.values() for t in ts] for scheme, runs in data["searches"].items()
    }
    _scatter_accuracy_co2(ax, groups, "RQ3: trials of each scheme's searches")
    stats = rq3.summary(data)["schemes"]
    located = {t["label"]: t for ts in groups.values() for t in ts if t["objectives"]}
    for scheme, s in stats.items():
        pick = located.get(s["modal_pick"] or "")
        if pick is not None:
            ax.annotate(
                f"{scheme}: {pick['label']}",
                (pick["objectives"]["co2_kg_per_1k_tokens"] * 1000, pick["objectives"]["accuracy"]),
                fontsize=7,
            )


def draw_rq4(ax: Any, data: dict[str, Any]) -> None:
    from agentic_compression.experiments import rq4

    stats = rq4.summary(data)
    names = list(stats)
    # Only measured figures are drawn: a failed or missing candidate gets a label, not a bar.
    for offset, label, pick in (
        (-0.2, "chosen by search (hatched: none feasible, closest shown)", lambda s: s["chosen"]),
        (0.2, "older rule", lambda s: s["rule"]),
    ):
        for x, s in enumerate(stats.values()):
            entry = pick(s)
            value = (entry or {}).get("co2_kg_per_day")
            if value is None:
                ax.annotate("failed" if entry else "none", (x + offset, 0), ha="center", fontsize=7)
                continue
            hatch = "//" if offset < 0 and not s["chosen_feasible"] else None
            color = "C0" if offset < 0 else "C1"
            ax.bar(x + offset, value, width=0.4, color=color, hatch=hatch,
                   label=label if x == 0 else None)  # fmt: skip
    ax.set_xticks(list(range(len(names))), names)
    ax.set_ylabel("kg CO2 per day")
    ax.set_title("RQ4: daily CO2 per profile (measured here)")
    ax.legend(fontsize=8)


DRAWERS: dict[str, Drawer] = {"rq1": draw_rq1, "rq2": draw_rq2, "rq3": draw_rq3, "rq4": draw_rq4}


def write_plots(data: dict[str, Any], folder: Path) -> list[Path]:
    """``folder/<rq>.svg`` and ``.png`` for one RQ's JSON."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    with plt.rc_context({"svg.hashsalt": "agentic-compression", "font.size": 9}):
        fig, ax = plt.subplots(figsize=(7, 4.5))
        try:
            DRAWERS[data["rq"]](ax, data)
            fig.tight_layout()
            for suffix, metadata in ((".svg", {"Date": None}), (".png", {"Software": None})):
                path = folder / f"{data['rq']}{suffix}"
                with atomic_output(path) as staging:
                    fig.savefig(staging, format=suffix[1:], metadata=metadata, dpi=120)
                written.append(path)
        finally:
            plt.close(fig)
    return written
