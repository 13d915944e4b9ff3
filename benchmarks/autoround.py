"""Calibrated 4-bit rounding (AutoRound) against round-to-nearest at the same bits, in torch and llama.cpp.

Run: ``.venv/bin/python benchmarks/autoround.py`` (about 45 minutes on 2 CPU cores, alone on the
machine). Writes ``benchmarks/results/autoround.{json,md}`` after every row.

The embedded SmolLM2-135M. AutoRound (the ``autoround`` step at its defaults: symmetric 4-bit groups
of 32, 50 iterations of 8 x 512 tokens, 64 calibration sequences of the shipped GSM8K *train* text)
runs once, metered; its float output (every decoder linear weight on the 4-bit grid) is then served:

- torch: ``int4_weight_only`` in groups of 32 (torchao; on a CPU the model computes in bfloat16),
  on the base model (round-to-nearest) and on AutoRound's output; the float output itself too (the
  grid's own quality, before any storage format);
- llama.cpp: GGUF ``Q4_0`` of the base model (llama.cpp's round-to-nearest), of the base model with
  an importance matrix from the same calibration text (llama.cpp's own calibrated quantization), and
  of AutoRound's output (its blocks are written exactly, not re-rounded).

Measured as ``runtime_table.py`` measures (3 latency repeats): perplexity on WikiText-2 *test*
(16 x 512 tokens), which the calibration never sees; ARC-Easy and HellaSwag (200 each, 0-shot); size
is the artefact's bytes; decode ms/token is recorded but is not the comparison. Headline keys: ``pairs``, per runtime: RTN and AutoRound
perplexity and bytes, ``autoround_better``; ``autoround_seconds`` and ``autoround_wh``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

from runtime_table import RESULTS, _row, table_config, warm_up_process

AUTOROUND = {"method": "autoround"}
INT4_G32 = [{"method": "int4_weight_only", "group_size": 32}]
Q4_0 = {"name": "llamacpp", "quant": "Q4_0"}
#: name -> (base model used: "base" or "autoround", steps, runtime).
CANDIDATES: dict[str, tuple[str, list[dict[str, Any]], dict[str, Any] | None]] = {
    "torch fp32": ("base", [], None),
    "torch autoround (float)": ("autoround", [], None),
    "torch int4-g32 RTN": ("base", INT4_G32, None),
    "torch int4-g32 autoround": ("autoround", INT4_G32, None),
    "gguf Q4_0 RTN": ("base", [], Q4_0),
    "gguf Q4_0+imatrix": ("base", [], {**Q4_0, "imatrix": True}),
    "gguf Q4_0 autoround": ("autoround", [], Q4_0),
}
PAIRS = [
    ("torch", "torch int4-g32 RTN", "torch int4-g32 autoround"),
    ("llamacpp", "gguf Q4_0 RTN", "gguf Q4_0 autoround"),
]


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression.apply import CompressionContext, compress
    from agentic_compression.compression.recipe import Recipe
    from agentic_compression.evaluation.candidate import evaluate_candidate
    from agentic_compression.models import load_model

    _quiet_libraries()
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    meter = CodeCarbonMeter("USA")
    config = table_config(repeats=3)
    warm_up_process(base, meter)

    model = base.fresh_copy()
    context = CompressionContext(base.tokenizer, config.calibration, config.seed)
    started = time.perf_counter()
    with meter.phase("compression") as box:
        (report,) = compress(model, Recipe.from_steps([AUTOROUND]), context)
    rounding = {
        "summary": report.summary,
        "calibration": context.calibration_used,
        "seconds": round(time.perf_counter() - started, 1),
        "wh": round(box.reading.energy_kwh * 1000, 3) if box.reading else None,
        "energy_label": str(box.reading.label) if box.reading else None,
    }
    print(json.dumps(rounding), flush=True)
    models = {
        "base": base,
        "autoround": dataclasses.replace(base, model=model, model_hash=f"{base.model_hash}+ar"),
    }

    rows: list[dict[str, Any]] = []
    for name, (source, steps, runtime) in CANDIDATES.items():
        started = time.perf_counter()
        recipe = Recipe.from_steps(steps, name, runtime)
        result = evaluate_candidate(models[source], recipe, config, meter)
        row = _row(name, result)
        deployment = result.metrics.deployment if result.metrics else None
        row["notes"] = list(deployment.notes) if deployment else []
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        _write(rounding, rows, load_before)


def _write(rounding: dict[str, Any], rows: list[dict[str, Any]], load_before: Any) -> None:
    from agentic_compression.core.provenance import machine_summary

    by_name = {row["candidate"]: row for row in rows if "perplexity" in row}
    pairs = [
        {
            "runtime": runtime,
            "rtn": rtn,
            "autoround": ar,
            "rtn_ppl": by_name[rtn]["perplexity"],
            "autoround_ppl": by_name[ar]["perplexity"],
            "rtn_bytes": by_name[rtn]["size_bytes"],
            "autoround_bytes": by_name[ar]["size_bytes"],
            "autoround_better": by_name[ar]["perplexity"] < by_name[rtn]["perplexity"],
        }
        for runtime, rtn, ar in PAIRS
        if rtn in by_name and ar in by_name
    ]
    payload = {
        "machine": machine_summary(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "autoround_seconds": rounding["seconds"],
        "autoround_wh": rounding["wh"],
        "autoround": rounding,
        "pairs": pairs,
        "rows": rows,
    }
    (RESULTS / "autoround.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# AutoRound against round-to-nearest at the same bits (measured)",
        "",
        f"Machine: {payload['machine']}. Generated by `benchmarks/autoround.py`.",
        "",
        f"AutoRound: {rounding['summary']}; {rounding['seconds']} s, {rounding['wh']} Wh "
        f"(calibration: {'; '.join(rounding['calibration'])}).",
        "",
        "| runtime | RTN | ppl | bytes | AutoRound | ppl | bytes | AutoRound better |",
        "|---|---|---|---|---|---|---|---|",
        *(
            f"| {p['runtime']} | {p['rtn']} | {p['rtn_ppl']:.3f} | {p['rtn_bytes']:,} "
            f"| {p['autoround']} | {p['autoround_ppl']:.3f} | {p['autoround_bytes']:,} "
            f"| {p['autoround_better']} |"
            for p in pairs
        ),
        "",
        "| candidate | status | perplexity | ARC-E | HS | bytes | decode ms p50 | seconds | notes |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {r['candidate']} | {r['status']} {r['error'] or ''} | {r.get('perplexity', '')} | "
            f"{r.get('accuracy', {}).get('arc_easy', '')} | "
            f"{r.get('accuracy', {}).get('hellaswag', '')} | "
            f"{r.get('size_bytes', '') and format(r['size_bytes'], ',')} | "
            f"{r.get('decode_ms_p50', '')} | {r['seconds']} | {'; '.join(r.get('notes', []))} |"
            for r in rows
        ),
        "",
    ]
    (RESULTS / "autoround.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
