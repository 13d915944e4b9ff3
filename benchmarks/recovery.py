"""Does LoRA recovery close the gap that pruning opens? 50% Wanda on the embedded model, then 200 steps.

Run: ``.venv/bin/python benchmarks/recovery.py`` (about 45 minutes on 2 CPU cores, alone on the
machine). Writes ``benchmarks/results/recovery.{json,md}`` after every row.

Candidates, all in PyTorch eager fp32, measured side by side in one process: the unpruned model,
Wanda 50% alone, and Wanda 50% followed by ``lora_recovery`` (rank 16 on every linear layer of the
blocks, 200 steps x 4 x 128 tokens, lr 5e-4 with warm-up and cosine decay, merged back with the
sparsity kept) trained with cross-entropy alone and with distillation from the unpruned model
(``distill_weight`` 0.5). Since session 10 the adapters of pruned layers are sparsity-preserving
(masked to the kept weights while they train): rows measured since say "adapters masked to the
kept weights" in their step summary, older rows "zeros of pruned layers restored". Training text: the shipped GSM8K *train* text (the default calibration
source); perplexity is measured on WikiText-2 *test*, so the recovery has to generalise across text
domains. Accuracy: ARC-Easy acc and HellaSwag acc_norm, 200 examples each, 0-shot.

The ``-teacher`` variants train on 800 x 128 tokens sampled from the unpruned model (temperature
1, top-p 0.95) instead of GSM8K: data-free recovery, text in the model's own distribution; the
``-teacher-distilled`` one with the KL to the teacher's logits alone (``distill_weight`` 1.0).
``--only NAME [NAME ...]`` re-runs those candidates and keeps the other rows of the previous
results file (each row records the machine it ran on).

Headline key, per recovery variant: ``gap_closed`` = (ppl(Wanda 50%) - ppl(recovered)) /
(ppl(Wanda 50%) - ppl(unpruned)); the target is at least 0.5. Training seconds and energy come from
the candidate's ``training`` phase.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from runtime_table import RESULTS, _row, table_config, warm_up_process

WANDA = {"method": "wanda", "sparsity": 0.5}
LORA = {"method": "lora_recovery", "steps": 200, "batch_size": 4, "seq_len": 128}
FP32 = {"method": "cast", "dtype": "float32"}
# Text sampled from the unpruned model itself: as many sequences as the 200 x 4 the steps consume.
TEACHER = {"data": "teacher", "teacher_sequences": 800}
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "unpruned": [FP32],
    "wanda-50": [WANDA, FP32],
    "wanda-50+lora": [WANDA, LORA, FP32],
    "wanda-50+lora-distilled": [WANDA, {**LORA, "distill_weight": 0.5}, FP32],
    "wanda-50+lora-teacher": [WANDA, {**LORA, **TEACHER}, FP32],
    "wanda-50+lora-teacher-distilled": [WANDA, {**LORA, **TEACHER, "distill_weight": 1.0}, FP32],
}
RECOVERED = [name for name in CANDIDATES if "+lora" in name]


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression.recipe import Recipe
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import evaluate_candidate
    from agentic_compression.models import load_model

    _quiet_libraries()
    only = sys.argv[sys.argv.index("--only") + 1 :] if "--only" in sys.argv else list(CANDIDATES)
    unknown = sorted(set(only) - set(CANDIDATES))
    if unknown:
        raise SystemExit(f"unknown candidates {unknown}; choose from {list(CANDIDATES)}")
    previous = _previous_rows()
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    meter = CodeCarbonMeter("USA")
    config = table_config(repeats=3)
    warm_up_process(base, meter)
    machine = machine_summary()
    machine.update(loadavg_before=[round(x, 2) for x in load_before])
    rows: list[dict[str, Any]] = []
    for name, steps in CANDIDATES.items():
        if name not in only:
            if name in previous:
                rows.append(previous[name])
            continue
        started = time.perf_counter()
        result = evaluate_candidate(base, Recipe.from_steps(steps, name), config, meter)
        print(f"{name}: {result.status} in {time.perf_counter() - started:.0f}s", flush=True)
        row = _row(name, result)
        training = [r for r in result.energy if r.phase == "training"]
        row.update(
            seconds=round(time.perf_counter() - started),
            training_s=round(sum(r.duration_s for r in training), 1),
            training_wh=round(sum(r.energy_kwh for r in training) * 1000, 3),
            steps=[s.summary for s in result.steps],
            machine=machine["cpu"],
        )
        rows.append(row)
        summary = summarise(rows)
        machine["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        RESULTS.mkdir(exist_ok=True)
        payload = {"machine": machine, **summary, "rows": rows}
        (RESULTS / "recovery.json").write_text(json.dumps(payload, indent=2))
        (RESULTS / "recovery.md").write_text(markdown(machine, summary, rows))
    print((RESULTS / "recovery.md").read_text())


def _previous_rows() -> dict[str, dict[str, Any]]:
    path = RESULTS / "recovery.json"
    if not path.exists():
        return {}
    old = json.loads(path.read_text())
    return {r["candidate"]: {"machine": old["machine"]["cpu"], **r} for r in old["rows"]}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ppl = {r["candidate"]: r["perplexity"] for r in rows if r["status"] == "ok"}
    gap: dict[str, float] = {}
    if "unpruned" in ppl and "wanda-50" in ppl:
        opened = ppl["wanda-50"] - ppl["unpruned"]
        for name in RECOVERED:
            if name in ppl and opened > 0:
                gap[name] = round((ppl["wanda-50"] - ppl[name]) / opened, 4)
    return {"gap_closed": gap}


def markdown(machine: dict[str, Any], summary: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        "# LoRA recovery after 50% Wanda on the embedded SmolLM2-135M (measured)",
        "",
        f"Machine: {machine['cpu']}, {machine['cpu_count']} cores, torch threads "
        f"{machine['torch_threads']}. Load average before/after: {machine['loadavg_before']} / "
        f"{machine.get('loadavg_after')}.",
        "",
        f"gap_closed (share of the perplexity gap to the unpruned model that recovery closes): "
        f"**{summary['gap_closed']}**",
        "",
        "| candidate | ppl (WikiText-2) | ARC-E | HS | training s | training Wh | machine |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['candidate']} | failed: {row['error']} |")
            continue
        acc = row["accuracy"]
        lines.append(
            f"| {row['candidate']} | {row['perplexity']:.2f} | {acc.get('arc_easy', '')} "
            f"| {acc.get('hellaswag', '')} | {row['training_s']} | {row['training_wh']} | {row.get('machine', '')} |"
        )
    lines += ["", "What each step did:", ""]
    for row in rows:
        for step in row.get("steps", []):
            lines.append(f"- {row['candidate']}: {step}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
