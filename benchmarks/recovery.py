"""Does LoRA recovery close the gap that pruning opens? 50% Wanda on the embedded model, then 200 steps.

Run: ``.venv/bin/python benchmarks/recovery.py`` (about 45 minutes on 2 CPU cores, alone on the
machine). Writes ``benchmarks/results/recovery.{json,md}`` after every row.

Candidates, all in PyTorch eager fp32, measured side by side in one process: the unpruned model,
Wanda 50% alone, and Wanda 50% followed by ``lora_recovery`` (rank 16 on every linear layer of the
blocks, 200 steps x 4 x 128 tokens, lr 5e-4 with warm-up and cosine decay, merged back with the
sparsity kept) trained with cross-entropy alone and with distillation from the unpruned model
(``distill_weight`` 0.5). Training text: the shipped GSM8K *train* text (the default calibration
source); perplexity is measured on WikiText-2 *test*, so the recovery has to generalise across text
domains. Accuracy: ARC-Easy acc and HellaSwag acc_norm, 200 examples each, 0-shot.

Headline key, per recovery variant: ``gap_closed`` = (ppl(Wanda 50%) - ppl(recovered)) /
(ppl(Wanda 50%) - ppl(unpruned)); the target is at least 0.5. Training seconds and energy come from
the candidate's ``training`` phase.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from runtime_table import RESULTS, _row, table_config, warm_up_process

WANDA = {"method": "wanda", "sparsity": 0.5}
LORA = {"method": "lora_recovery", "steps": 200, "batch_size": 4, "seq_len": 128}
FP32 = {"method": "cast", "dtype": "float32"}
CANDIDATES: dict[str, list[dict[str, Any]]] = {
    "unpruned": [FP32],
    "wanda-50": [WANDA, FP32],
    "wanda-50+lora": [WANDA, LORA, FP32],
    "wanda-50+lora-distilled": [WANDA, {**LORA, "distill_weight": 0.5}, FP32],
}


def main() -> None:
    from agentic_compression.carbon.energy_meter import CodeCarbonMeter
    from agentic_compression.cli.app import _quiet_libraries
    from agentic_compression.compression.recipe import Recipe
    from agentic_compression.core.provenance import machine_summary
    from agentic_compression.evaluation.candidate import evaluate_candidate
    from agentic_compression.models import load_model

    _quiet_libraries()
    load_before = os.getloadavg()
    base = load_model("smollm2-135m")
    meter = CodeCarbonMeter("USA")
    config = table_config(repeats=3)
    warm_up_process(base, meter)
    machine = machine_summary()
    machine.update(loadavg_before=[round(x, 2) for x in load_before])
    rows: list[dict[str, Any]] = []
    for name, steps in CANDIDATES.items():
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
        )
        rows.append(row)
        summary = summarise(rows)
        machine["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        RESULTS.mkdir(exist_ok=True)
        payload = {"machine": machine, **summary, "rows": rows}
        (RESULTS / "recovery.json").write_text(json.dumps(payload, indent=2))
        (RESULTS / "recovery.md").write_text(markdown(machine, summary, rows))
    print((RESULTS / "recovery.md").read_text())


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    ppl = {r["candidate"]: r["perplexity"] for r in rows if r["status"] == "ok"}
    gap: dict[str, float] = {}
    if "unpruned" in ppl and "wanda-50" in ppl:
        opened = ppl["wanda-50"] - ppl["unpruned"]
        for name in ("wanda-50+lora", "wanda-50+lora-distilled"):
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
        "| candidate | ppl (WikiText-2) | ARC-E | HS | training s | training Wh |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["status"] != "ok":
            lines.append(f"| {row['candidate']} | failed: {row['error']} |")
            continue
        acc = row["accuracy"]
        lines.append(
            f"| {row['candidate']} | {row['perplexity']:.2f} | {acc.get('arc_easy', '')} "
            f"| {acc.get('hellaswag', '')} | {row['training_s']} | {row['training_wh']} |"
        )
    lines += ["", "What each step did:", ""]
    for row in rows:
        for step in row.get("steps", []):
            lines.append(f"- {row['candidate']}: {step}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
