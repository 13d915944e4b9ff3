"""Per-layer mixed precision against uniform formats of the same size, in llama.cpp and in torch.

Run: ``.venv/bin/python benchmarks/mixed_precision.py [CANDIDATE ...]`` (about 30 minutes on 2 CPU
cores, alone on the machine; named candidates only are re-measured, the other rows kept). Writes
``benchmarks/results/mixed_precision.{json,md}`` after every row.

The embedded SmolLM2-135M, each candidate measured in the runtime that serves it:

- llama.cpp: uniform Q4_1 (5.0 bits/weight) and Q5_0 (5.5) against ``Q4_0 + mix_bits`` at the same
  budgets (the decoder's matrices get Q4_0, Q5_0 or Q8_0 by measured sensitivity; the embeddings
  keep the Q4_0 rule's type), and uniform Q4_0 as the floor;
- torch: uniform ``int4_weight_only`` in groups of 32 (5.0 bits/weight: a bfloat16 scale and zero
  per 32 weights; on a CPU the model computes in bfloat16) against ``mixed_precision`` at
  ``budget_bits`` 5.0 (int4 in groups of 64, 4.5 bits, or int8, per layer by sensitivity), and
  uniform int8 as the ceiling. On this model int4 in groups of 32 is already within noise of
  float32 (nothing at its size can do better), so a second pair sits where uniform int4 loses
  quality: uniform int4 in groups of 64 (4.5 bits/weight) against ``mixed_precision`` at
  ``budget_bits`` 4.5 choosing per layer among int4 in groups of 128, 64 or 32 (4.25 to 5.0 bits)
  and int8 (added in session 10 with per-layer int4 group sizes). The first definition (groups of
  128 or 32, or int8) could not run: 128 does not divide the 576 inputs of six of the seven
  matrices, and groups of 32 for those alone exceed 4.5 bits; it was redefined with every group size
  torchao's CPU kernel takes (the allocator picks what each layer can hold), the budget unchanged.

The budgets are the uniform formats' own sizes, fixed before anything was measured; sensitivity is
measured on the shipped GSM8K *train* text, perplexity on WikiText-2 *test* (16 x 512 tokens), so the
allocation never sees the text it is judged on. Size is the artefact's bytes (the GGUF file; the
``torch.save`` state dict). Decode ms/token (128-token prompt, 32 new tokens, 1 warm-up + 3 repeats)
is recorded too; it is not what the comparison is about.

Headline keys: per runtime, ``pairs``: for each budget, the uniform and mixed perplexities and sizes,
``mixed_better`` (lower perplexity) and ``mixed_not_larger`` (size <= the uniform one).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from runtime_table import RESULTS, warm_up_process

CANDIDATES: dict[str, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {
    "gguf Q4_0": ({"name": "llamacpp", "quant": "Q4_0"}, []),
    "gguf Q4_1": ({"name": "llamacpp", "quant": "Q4_1"}, []),
    "gguf Q4_0+mix5": ({"name": "llamacpp", "quant": "Q4_0", "mix_bits": 5.0}, []),
    "gguf Q5_0": ({"name": "llamacpp", "quant": "Q5_0"}, []),
    "gguf Q4_0+mix5.5": ({"name": "llamacpp", "quant": "Q4_0", "mix_bits": 5.5}, []),
    "torch int4-g32": (None, [{"method": "int4_weight_only", "group_size": 32}]),
    "torch mixed-5bit": (None, [{"method": "mixed_precision", "budget_bits": 5.0}]),
    "torch int8": (None, [{"method": "int8_weight_only"}]),
    "torch int4-g64": (None, [{"method": "int4_weight_only", "group_size": 64}]),
    "torch mixed-4.5bit": (
        None,
        [
            {
                "method": "mixed_precision",
                "budget_bits": 4.5,
                "types": ["int4-g128", "int4-g64", "int4-g32", "int8"],
            }
        ],
    ),
}
#: (runtime, uniform candidate, mixed candidate at the uniform one's budget).
PAIRS = [
    ("llamacpp", "gguf Q4_1", "gguf Q4_0+mix5"),
    ("llamacpp", "gguf Q5_0", "gguf Q4_0+mix5.5"),
    ("torch", "torch int4-g32", "torch mixed-5bit"),
    ("torch", "torch int4-g64", "torch mixed-4.5bit"),
]


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression.recipe import Recipe
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import MeasureConfig, evaluate_candidate
    from agentic_compression.evaluation.latency import LatencyConfig
    from agentic_compression.evaluation.perplexity import PerplexityConfig
    from agentic_compression.models import load_model

    _quiet_libraries()
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    meter = CodeCarbonMeter("USA")
    config = MeasureConfig(
        latency=LatencyConfig(prompt_tokens=128, new_tokens=32, warmup=1, repeats=3),
        perplexity=PerplexityConfig(seq_len=512, windows=16),
    )
    warm_up_process(base, meter)
    # Named candidates are (re-)measured; the other rows are kept from the last results file.
    only = set(sys.argv[1:])
    rows: list[dict[str, Any]] = []
    previous = RESULTS / "mixed_precision.json"
    if only and previous.exists():
        rows = [r for r in json.loads(previous.read_text())["rows"] if r["candidate"] not in only]
    for name, (runtime, steps) in CANDIDATES.items():
        if only and name not in only:
            continue
        started = time.perf_counter()
        result = evaluate_candidate(base, Recipe.from_steps(steps, name, runtime), config, meter)
        m = result.metrics
        row: dict[str, Any] = {"candidate": name, "status": result.status, "error": result.error}
        if m is not None and m.perplexity is not None:
            row.update(
                perplexity=round(m.perplexity.value, 4),
                size_bytes=m.size.serialized_bytes,
                format=m.deployment.format if m.deployment else None,
                tensor_types=dict(m.deployment.tensor_types) if m.deployment else None,
                allocation=[
                    n
                    for n in [
                        *(m.deployment.notes if m.deployment else ()),
                        *(s.summary for s in result.steps),
                    ]
                    if "bits/weight" in n
                ],
                decode_ms_p50=round(m.latency.decode_ms_median, 2) if m.latency else None,
            )
        row["seconds"] = round(time.perf_counter() - started, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
        _write(rows, load_before)
    print(machine_summary())


def _write(rows: list[dict[str, Any]], load_before: tuple[float, float, float]) -> None:
    from agentic_compression.core.provenance import machine_summary

    by_name = {row["candidate"]: row for row in rows if "perplexity" in row}
    pairs = []
    for runtime, uniform, mixed in PAIRS:
        if uniform in by_name and mixed in by_name:
            u, x = by_name[uniform], by_name[mixed]
            pairs.append(
                {
                    "runtime": runtime,
                    "uniform": uniform,
                    "mixed": mixed,
                    "uniform_ppl": u["perplexity"],
                    "mixed_ppl": x["perplexity"],
                    "uniform_bytes": u["size_bytes"],
                    "mixed_bytes": x["size_bytes"],
                    "mixed_better": x["perplexity"] < u["perplexity"],
                    "mixed_not_larger": x["size_bytes"] <= u["size_bytes"],
                }
            )
    payload = {
        "machine": machine_summary(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "pairs": pairs,
        "rows": rows,
    }
    (RESULTS / "mixed_precision.json").write_text(json.dumps(payload, indent=2) + "\n")
    lines = [
        "# Mixed precision against uniform formats of the same size",
        "",
        f"Machine: {payload['machine']}. Generated by `benchmarks/mixed_precision.py`.",
        "",
        "| runtime | uniform | ppl | bytes | mixed | ppl | bytes | mixed better | not larger |",
        "|---|---|---|---|---|---|---|---|---|",
        *(
            f"| {p['runtime']} | {p['uniform']} | {p['uniform_ppl']:.3f} | {p['uniform_bytes']:,} "
            f"| {p['mixed']} | {p['mixed_ppl']:.3f} | {p['mixed_bytes']:,} | {p['mixed_better']} "
            f"| {p['mixed_not_larger']} |"
            for p in pairs
        ),
        "",
        "| candidate | status | perplexity | bytes | decode ms p50 | seconds |",
        "|---|---|---|---|---|---|",
        *(
            f"| {r['candidate']} | {r['status']} | {r.get('perplexity', '')} | "
            f"{r.get('size_bytes', '') and format(r['size_bytes'], ',')} | "
            f"{r.get('decode_ms_p50', '')} | {r['seconds']} |"
            for r in rows
        ),
        "",
    ]
    (RESULTS / "mixed_precision.md").write_text("\n".join(lines))


if __name__ == "__main__":
    main()
