"""A second held-out grid for the search-efficiency replay, measured at screening fidelity.

27 (recipe, runtime) candidates of the embedded model: no pruning, Wanda 30% and 50%, each in
PyTorch fp32 / bf16 / int8 / NF4, llama.cpp F16 / Q8_0 / Q4_0 and ONNX Runtime int8 / int4. It
differs from the first held-out grid (``multifidelity_grid.json``: full fidelity, Q4_K_M, 30% MLP
channels) in candidates and in measurement configuration: ``agentic-compress run-all --quick``'s
(screening fidelity: ARC-Easy 25 examples, 4 perplexity windows, one latency repeat). The offline
planner's seed list (``planning.space.SEED_POINTS``) was frozen before it was measured.

Usage (alone on the machine: latency is measured)::

    .venv/bin/python benchmarks/heldout_grid.py [EXPERIMENT_FOLDER]

With the folder of an ``agentic-compress run-all --quick`` run on this machine, the candidates that
run measured are reused from its ``measurements.jsonl`` (same evaluator settings hash) and only the
rest are measured, into the same log. Writes ``results/heldout_grid_screen.json``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
GRID_FILE = RESULTS / "heldout_grid_screen.json"
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "benchmarks"


def heldout_space() -> Any:
    from agentic_compression.planning.space import SearchSpace

    return SearchSpace(
        pruning=("none", "wanda"),
        sparsity_levels=(0.3, 0.5),
        quantizations=(
            "fp32", "bf16", "int8_weight_only", "nf4", "gguf-f16", "gguf-q8_0", "gguf-q4_0",
            "onnx-int8", "onnx-int4",
        ),
    )  # fmt: skip


def main() -> None:
    from rich.progress import Progress

    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.cli.search_commands import _evaluator
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.experiments.measurements import MeasurementLog
    from agentic_compression.workflow.runner import SearchSettings

    _quiet_libraries()
    os.environ.setdefault("AGENTIC_COMPRESSION_DATA", str(DATA_DIR))
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("/tmp/heldout-grid")
    # The settings run-all --quick measures with (the CLI's defaults): same evaluator hash.
    settings = SearchSettings(model="smollm2-135m")
    with Progress(transient=True) as progress:
        evaluator = _evaluator(settings, progress)
    log = MeasurementLog(folder / "measurements.jsonl", evaluator, "screen")
    before = [round(x, 2) for x in os.getloadavg()]
    space = heldout_space()
    rows = []
    for point in space.grid():
        reused = space.to_recipe(point).hash in log.known
        measured = log.measure(space.to_recipe(point))
        state = "reused" if reused else f"measured in {measured.seconds:.0f} s"
        print(f"{point.label}: {measured.status} ({state})", flush=True)
        rows.append({**measured.to_dict(), "reused_from_run_all": reused})
    grid = {
        "description": __doc__,
        "evaluation_config_hash": evaluator.config_hash,
        "fidelity": "screen",
        "machine": machine_summary(),
        "load_average_before": before,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "rows": rows,
    }
    GRID_FILE.write_text(json.dumps(grid, indent=1) + "\n")
    print(f"wrote {GRID_FILE}")


if __name__ == "__main__":
    main()
