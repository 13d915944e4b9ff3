"""The results gallery: representative runs kept outside git, and what a new run changes against them.

A gallery is a folder (``$AGENTIC_COMPRESSION_GALLERY``, else ``<home>/gallery``; see
:func:`agentic_compression.paths.home`) with one sub-folder per entry holding the run's
``results.json`` (and ``pareto.svg``/``trials.csv`` when present) and ``entry.json`` (name, model,
machine, when it was added, the evaluation settings hash). :func:`add` copies a run in;
:func:`compare` lines a run up against every entry of the same model: the candidates both measured
(same recipe hash, full fidelity), accuracy difference and latency, size and energy ratios, and the
pick of each, so a change in code, library or machine shows as numbers.

Example:
    >>> add(Path("runs/20261202-084823-317318"), name="smollm2-cpu")   # doctest: +SKIP
    >>> rows = compare(load_run(Path("runs/20261203-101010-aaaaaa")))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentic_compression.core.provenance import now
from agentic_compression.errors import UserInputError
from agentic_compression.paths import home

GALLERY_ENV = "AGENTIC_COMPRESSION_GALLERY"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_COPIED = ("results.json", "pareto.svg", "trials.csv")


def gallery_dir() -> Path:
    root = os.environ.get(GALLERY_ENV)
    path = Path(root) if root else home() / "gallery"
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_run(folder: Path) -> dict[str, Any]:
    """A run folder's ``results.json``, or a one-line error saying what to pass."""
    path = folder / "results.json"
    if not path.is_file():
        raise UserInputError(
            f"{folder} has no results.json; pass a finished run's folder (runs/<run id>) or its id"
        )
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        data["run"]["model"]
    except (ValueError, KeyError, TypeError) as error:
        raise UserInputError(f"{path} is not a run's results file ({error})") from None
    return data


def _machine(results: dict[str, Any]) -> str:
    for trial in results.get("trials", []):
        provenance = (trial.get("result") or {}).get("provenance") or {}
        if provenance.get("cpu"):
            gpu = f", {provenance['gpu']}" if provenance.get("gpu") else ""
            return f"{provenance['cpu']} x{provenance.get('cpu_count', '?')}{gpu}"
    return "unknown"


def add(run_folder: Path, name: str | None = None, *, replace: bool = False) -> Path:
    """Copy a finished run into the gallery as ``name`` (default: its run id)."""
    results = load_run(run_folder)
    name = name or results["run"]["run_id"]
    if not _NAME.match(name):
        raise UserInputError(
            f"gallery name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    target = gallery_dir() / name
    if target.exists():
        if not replace:
            raise UserInputError(
                f"the gallery already has {name!r}; pass --replace or a new --name"
            )
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for file in _COPIED:
        if (run_folder / file).is_file():
            shutil.copy2(run_folder / file, target / file)
    entry = {
        "name": name,
        "run_id": results["run"]["run_id"],
        "model": results["run"]["model"],
        "evaluation_config_hash": results["run"]["config"].get("evaluation_config_hash"),
        "machine": _machine(results),
        "added_at": now(),
        "source": str(run_folder.resolve()),
    }
    (target / "entry.json").write_text(json.dumps(entry, indent=1) + "\n", encoding="utf-8")
    return target


def entries() -> list[dict[str, Any]]:
    """Every gallery entry's ``entry.json``, by name."""
    out = []
    for path in sorted(gallery_dir().glob("*/entry.json")):
        out.append(json.loads(path.read_text(encoding="utf-8")))
    return out


def _measured(results: dict[str, Any]) -> dict[str, tuple[str, dict[str, float]]]:
    """recipe hash -> (label, objectives) of the run's full-fidelity ok trials."""
    from agentic_compression.compression.recipe import Recipe

    out = {}
    for trial in results.get("trials", []):
        fidelity = (trial.get("provenance") or {}).get("fidelity", "full")
        if trial.get("objectives") and fidelity == "full":
            label = Recipe.from_dict(trial["recipe"]).label
            out[trial["recipe_hash"]] = (label, trial["objectives"])
    return out


@dataclass(frozen=True)
class Difference:
    """One candidate measured by both the run and a gallery entry."""

    entry: str
    label: str
    accuracy_delta: float
    latency_ratio: float
    size_ratio: float
    energy_ratio: float


@dataclass(frozen=True)
class Comparison:
    entry: dict[str, Any]
    same_settings: bool
    shared: list[Difference]
    run_pick: str | None
    entry_pick: str | None


def _pick(results: dict[str, Any]) -> str | None:
    choice = (results.get("selected") or {}).get("choice")
    return choice["label"] if choice else None


def compare(results: dict[str, Any], against: str | None = None) -> list[Comparison]:
    """The run against each gallery entry of its model (or only ``against``)."""
    model = results["run"]["model"]
    chosen = [
        e for e in entries() if (against is None and e["model"] == model) or e["name"] == against
    ]
    if not chosen:
        hint = f"entry {against!r}" if against else f"entry for model {model!r}"
        raise UserInputError(
            f"the gallery ({gallery_dir()}) has no {hint}; add one with `gallery add`"
        )
    mine = _measured(results)
    config = results["run"]["config"].get("evaluation_config_hash")
    out = []
    for entry in chosen:
        theirs_results = load_run(gallery_dir() / entry["name"])
        theirs = _measured(theirs_results)
        shared = []
        for recipe_hash in sorted(set(mine) & set(theirs), key=lambda h: mine[h][0]):
            label, a = mine[recipe_hash]
            _, b = theirs[recipe_hash]
            shared.append(
                Difference(
                    entry=entry["name"],
                    label=label,
                    accuracy_delta=a["accuracy"] - b["accuracy"],
                    latency_ratio=a["latency_ms"] / b["latency_ms"],
                    size_ratio=a["memory_bytes"] / b["memory_bytes"],
                    energy_ratio=a["energy_kwh_per_1k_tokens"] / b["energy_kwh_per_1k_tokens"],
                )
            )
        out.append(
            Comparison(
                entry=entry,
                same_settings=config is not None and config == entry["evaluation_config_hash"],
                shared=shared,
                run_pick=_pick(results),
                entry_pick=_pick(theirs_results),
            )
        )
    return out
