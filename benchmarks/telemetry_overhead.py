"""What energy tracking costs: the same evaluation with and without the default meter, side by side.

Run: ``.venv/bin/python benchmarks/telemetry_overhead.py [pairs]`` (about 2 minutes on 2 idle CPU cores).
Writes ``benchmarks/results/telemetry_overhead.json``.

The work is what ``evaluate_candidate`` meters for every candidate: decode/prefill latency and
WikiText-2 perplexity of a fresh copy of the embedded SmolLM2-135M. "Tracked" wraps each of the two
measurements in ``meter.phase(...)`` of the meter ``make_energy_meter`` picks here, as the candidate
evaluation does; "untracked" runs the same calls bare. Runs alternate in ABBA order (untracked,
tracked, tracked, untracked, ...) so that a slow drift of the machine's load falls on both sides
equally. One untracked and one tracked run come first as warm-up (the meter's one-off hardware
detection happens there and is reported apart as ``meter_setup_s``). ``overhead_ratio`` is the median
tracked time over the median untracked time; the per-pair ratios show the spread.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"
TARGET_RATIO = 1.05


def main() -> None:
    from agentic_compression.carbon.meter_factory import make_energy_meter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.latency import LatencyConfig, measure_latency
    from agentic_compression.evaluation.perplexity import PerplexityConfig, perplexity
    from agentic_compression.models import load_model

    _quiet_libraries()
    pairs = int(sys.argv[1]) if len(sys.argv) > 1 else 10
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    model = base.fresh_copy()
    # Smaller than a candidate's evaluation, so the meter's fixed cost per phase weighs more here:
    # the ratio is an upper bound for the longer phases of a real run.
    latency_config = LatencyConfig(prompt_tokens=64, new_tokens=16, warmup=1, repeats=2)
    ppl_config = PerplexityConfig(seq_len=256, windows=2, batch_size=2)

    def latency() -> Any:
        return measure_latency(model, base.tokenizer, latency_config)

    def ppl() -> Any:
        return perplexity(model, base.tokenizer, ppl_config)

    started = time.perf_counter()
    meter = make_energy_meter("USA")
    meter.components  # noqa: B018 - the one-off hardware detection, timed here and not below
    meter_setup_s = time.perf_counter() - started
    energy_kwh: list[float] = []

    def untracked() -> None:
        latency()
        ppl()

    def tracked() -> None:
        for name, work in (("latency", latency), ("perplexity", ppl)):
            with meter.phase(name) as box:
                work()
            assert box.reading is not None
            energy_kwh.append(box.reading.energy_kwh)

    def timed(run: Callable[[], None]) -> tuple[float, float]:
        """Wall-clock and CPU seconds of this process (all its threads, the meter's included)."""
        wall, cpu = time.perf_counter(), time.process_time()
        run()
        return time.perf_counter() - wall, time.process_time() - cpu

    timed(untracked), timed(tracked)  # warm-up
    times: dict[str, list[float]] = {"untracked": [], "tracked": []}
    cpu_times: dict[str, list[float]] = {"untracked": [], "tracked": []}
    pair_ratios = []
    for index in range(pairs):
        order = ("untracked", "tracked") if index % 2 == 0 else ("tracked", "untracked")
        pair = {kind: timed(untracked if kind == "untracked" else tracked) for kind in order}
        for kind, (wall_s, cpu_s) in pair.items():
            times[kind].append(wall_s)
            cpu_times[kind].append(cpu_s)
        pair_ratios.append(pair["tracked"][0] / pair["untracked"][0])
        print(f"pair {index + 1}/{pairs}: untracked {pair['untracked'][0]:.2f}s, "
              f"tracked {pair['tracked'][0]:.2f}s", flush=True)  # fmt: skip
    empty_phase_ms = []
    for _ in range(20):
        begin = time.perf_counter()
        with meter.phase("empty"):
            pass
        empty_phase_ms.append((time.perf_counter() - begin) * 1000)

    median = {kind: statistics.median(values) for kind, values in times.items()}
    ratio = median["tracked"] / median["untracked"]
    machine = machine_summary()
    machine.update(
        loadavg_before=[round(x, 2) for x in load_before],
        loadavg_after=[round(x, 2) for x in os.getloadavg()],
        model=f"{base.spec} ({base.source})",
    )
    result = {
        "overhead_ratio": round(ratio, 4),
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio < TARGET_RATIO,
        "meter": meter.name,
        "meter_label": meter.label,
        "meter_setup_s": round(meter_setup_s, 3),
        "empty_phase_ms_median": round(statistics.median(empty_phase_ms), 3),
        # Start+stop of the two phases of a tracked run, as a fraction of an untracked run: the part
        # of the overhead that does not depend on how long the work runs.
        "phase_fixed_cost_fraction": round(
            2 * statistics.median(empty_phase_ms) / 1000 / median["untracked"], 6
        ),
        "pairs": pairs,
        "order": "ABBA (untracked, tracked, tracked, untracked, ...) after one warm-up of each",
        "work": "measure_latency (64-token prompt, 16 new tokens, 1 warm-up + 2 repeats) then "
        "perplexity (WikiText-2 raw test, 2 x 256-token windows), on one fresh copy of the model; "
        "tracked = each wrapped in meter.phase(name), as evaluate_candidate does",
        "seconds": {
            kind: {
                "median": round(median[kind], 3),
                "min": round(min(values), 3),
                "max": round(max(values), 3),
                "all": [round(v, 3) for v in values],
            }
            for kind, values in times.items()
        },
        # CPU time is less sensitive than wall time to other processes sharing the cores.
        "cpu_seconds": {kind: round(statistics.median(v), 3) for kind, v in cpu_times.items()},
        "cpu_overhead_ratio": round(
            statistics.median(cpu_times["tracked"]) / statistics.median(cpu_times["untracked"]), 4
        ),
        "pair_ratio": {
            "median": round(statistics.median(pair_ratios), 4),
            "min": round(min(pair_ratios), 4),
            "max": round(max(pair_ratios), 4),
        },
        "energy_kwh_per_tracked_phase_median": statistics.median(energy_kwh),
        "machine": machine,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "telemetry_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    meter.close()
    print(json.dumps({k: result[k] for k in ("overhead_ratio", "pair_ratio", "seconds")}, indent=2))


if __name__ == "__main__":
    main()
