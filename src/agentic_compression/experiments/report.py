"""Files of an experiment folder: ``rqN.json`` (the data), ``rqN.md`` (tables), ``plots/rqN.*``.

:func:`write_result` stores an RQ's JSON and renders from the stored file (never from the objects
in memory), so :func:`regenerate` (``agentic-compress report DIR``) writes the same bytes later.

Example:
    >>> regenerate(Path("experiments/20261202"))   # doctest: +SKIP
    [PosixPath('.../rq1.md'), PosixPath('.../plots/rq1.svg'), ...]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agentic_compression.errors import UserInputError
from agentic_compression.experiments import rq1, rq2, rq3, rq4
from agentic_compression.experiments.plots import write_plots
from agentic_compression.paths import atomic_output

RENDERERS = {"rq1": rq1.render, "rq2": rq2.render, "rq3": rq3.render, "rq4": rq4.render}


def write_result(data: dict[str, Any], folder: Path) -> list[Path]:
    """Write ``<rq>.json`` and render its table and plots from the file just written."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{data['rq']}.json"
    with atomic_output(path) as staging:
        staging.write_text(json.dumps(data, indent=1, sort_keys=True, default=str) + "\n")
    return [path, *render_file(path)]


def render_file(path: Path) -> list[Path]:
    """``<rq>.md`` and ``plots/<rq>.svg|png`` from one RQ JSON file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        renderer = RENDERERS[data["rq"]]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UserInputError(f"{path} is not an RQ result file ({error}); rerun that RQ") from None
    table = path.with_suffix(".md")
    try:
        text = renderer(data) + footer(data)
        plots = write_plots(data, path.parent / "plots")
    except (KeyError, TypeError, ValueError) as error:
        raise UserInputError(
            f"{path} cannot be rendered ({type(error).__name__}: {error}): it was written by "
            "another version; rerun that RQ in this folder (measurements are reused)"
        ) from None
    with atomic_output(table) as staging:
        staging.write_text(text, encoding="utf-8")
    return [table, *plots]


def footer(data: dict[str, Any]) -> str:
    """What the RQ's candidates cost to measure, and where the figures come from."""
    cost = data.get("measurement_cost")
    machine = data.get("provenance", {}).get("machine", {})
    where = f"{machine.get('cpu', '?')} x{machine.get('cpu_count', '?')}"
    if machine.get("gpu"):
        where += f", {machine['gpu']}"
    lines = ["", f"Measured on {where}, git {data.get('provenance', {}).get('git_revision')}."]
    disturbed = sorted(_disturbed(data))
    if disturbed:
        lines.append(
            "Latency stayed disturbed by other load after re-measuring (kept, flagged; its "
            f"latency, energy and CO2 are suspect): {', '.join(disturbed)}."
        )
    if cost:
        lines.append(
            f"Measurement cost of its {cost['candidates']} candidates: "
            f"{cost['evaluation_seconds']:.0f} s and {cost['evaluation_energy_kwh'] * 1000:.3g} Wh "
            "of evaluation (each measured once per folder, shared with the other RQs there)."
        )
    return "\n".join([*lines, ""])


def _disturbed(node: Any) -> set[str]:
    """Labels of every trial in an RQ's JSON whose latency measurement stayed disturbed."""
    if isinstance(node, dict):
        found = {str(node["label"])} if node.get("disturbed") and "label" in node else set()
        for value in node.values():
            found |= _disturbed(value)
        return found
    if isinstance(node, list):
        return set().union(*(_disturbed(v) for v in node)) if node else set()
    return set()


def regenerate(folder: Path) -> list[Path]:
    """Every table and plot of ``folder`` from its ``rq*.json`` files alone."""
    files = sorted(folder.glob("rq[1-4].json"))
    if not files:
        raise UserInputError(
            f"{folder} holds no rq1.json ... rq4.json; run `agentic-compress run-all --output "
            f"{folder}` (or one run-rqN) first"
        )
    written: list[Path] = []
    for path in files:
        written += render_file(path)
    return written
