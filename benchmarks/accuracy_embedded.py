"""Embedded SmolLM2-135M-Instruct on MMLU, ARC-Easy, ARC-Challenge and HellaSwag, offline, >= 200 examples.

Runs the project's adapter (``evaluate_accuracy``) on the shared benchmark data, zero-shot, and sets the
scores beside the published SmolLM2-135M-Instruct figures. Writes
``benchmarks/results/accuracy_embedded.json`` and ``.md``.

Sample sizes: ARC-Easy, ARC-Challenge and HellaSwag use their first 200 examples (lm-eval ``limit``).
lm-eval applies ``limit`` to each MMLU subject, so MMLU uses 4 per subject: 57 x 4 = 228 examples spread
over all subjects, aggregated by lm-eval's size-weighted MMLU group (every subject has >= 100 test rows,
so each contributes exactly 4).

Usage (about 45 minutes on 2 busy CPU cores; ``--markdown-only`` re-renders the .md from the .json):
    HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
    nohup .venv/bin/python benchmarks/accuracy_embedded.py > accuracy_embedded.log 2>&1 &
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

for _flag in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
    os.environ.setdefault(_flag, "1")

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("AGENTIC_COMPRESSION_DATA", REPO.parent / "shared" / "benchmarks"))
RESULTS = REPO / "benchmarks" / "results"
LIMIT = 200
MMLU_PER_SUBJECT = 4
BATCH_SIZE = 4

MODEL_CARD = "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"
MODEL_CARD_COPY = (
    "github.com/remyolson/llm-lab @ 0d44ab1f : models/small-llms/smollm-135m/README.md "
    "(verbatim copy of the model card)"
)
THIRD_PARTY = "https://huggingface.co/lldois/SmolLM2-135M-Reasoning-SLERP-Champion"

#: The model card's "Instruction model" table (lighteval, zero-shot; percent).
PUBLISHED = {
    "hellaswag": {"value": 40.9, "what": "HellaSwag (lighteval, 0-shot, full validation)"},
    "arc_average": {
        "value": 37.3,
        "what": "ARC (Average of Easy and Challenge; lighteval, 0-shot)",
    },
    "mmlu": {"value": 29.3, "what": "MMLU (cloze formulation; lighteval, 0-shot)"},
}
#: lm-eval 0-shot figures for the same model from a third-party card ("Baseline" column; percent).
THIRD_PARTY_LM_EVAL = {
    ("arc_challenge", "acc_norm"): 27.73,
    ("arc_easy", "acc"): 54.12,
    ("hellaswag", "acc_norm"): 42.99,
}


def main() -> None:
    import torch

    from agentic_compression.core.provenance import machine_summary, now
    from agentic_compression.evaluation.accuracy import (
        AccuracyConfig,
        TaskSpec,
        evaluate_accuracy,
    )
    from agentic_compression.models import load_model

    loaded = load_model("smollm2-135m")
    tasks = (
        TaskSpec("mmlu", limit=MMLU_PER_SUBJECT),
        TaskSpec("arc_easy", metric="all"),
        TaskSpec("arc_challenge", metric="all"),
        TaskSpec("hellaswag", metric="all"),
    )
    started = now()
    rows: list[dict[str, Any]] = []
    for spec in tasks:
        config = AccuracyConfig((spec,), data_dir=DATA, limit=LIMIT, batch_size=BATCH_SIZE)
        start = time.perf_counter()
        metrics = evaluate_accuracy(loaded.model, loaded.tokenizer, config)
        seconds = time.perf_counter() - start
        print(f"{spec.name}: {seconds:.0f} s", flush=True)
        for m in metrics:
            rows.append({**m.model_dump(mode="json"), "wall_s": round(seconds, 1)})

    def pick(task: str, metric: str) -> dict[str, Any]:
        return next(r for r in rows if r["task"] == task and r["metric"] == metric)

    arc_e, arc_c = pick("arc_easy", "acc_norm"), pick("arc_challenge", "acc_norm")
    arc_average = (float(arc_e["value"]) + float(arc_c["value"])) / 2
    arc_average_se = 0.5 * (float(arc_e["stderr"]) ** 2 + float(arc_c["stderr"]) ** 2) ** 0.5
    comparison: list[dict[str, Any]] = [
        {
            "benchmark": "hellaswag",
            "ours": pick("hellaswag", "acc_norm"),
            "ours_metric": "acc_norm",
            "published": PUBLISHED["hellaswag"],
        },
        {
            "benchmark": "arc_average",
            "ours": {"value": arc_average, "stderr": arc_average_se},
            "ours_metric": "mean of ARC-Easy and ARC-Challenge acc_norm",
            "published": PUBLISHED["arc_average"],
        },
        {
            "benchmark": "mmlu",
            "ours": pick("mmlu", "acc"),
            "ours_metric": "acc (lm-eval letter-choice MMLU)",
            "published": PUBLISHED["mmlu"],
        },
    ]
    for item in comparison:
        ours = item["ours"]
        item["difference_points"] = round(
            100 * float(ours["value"]) - float(item["published"]["value"]),
            2,
        )
    third_party = [
        {
            "task": task,
            "metric": metric,
            "third_party_lm_eval": value,
            "ours": round(100 * float(pick(task, metric)["value"]), 2),
            "ours_stderr": round(100 * float(pick(task, metric)["stderr"]), 2),
        }
        for (task, metric), value in THIRD_PARTY_LM_EVAL.items()
    ]
    result = {
        "model": "smollm2-135m (embedded SmolLM2-135M-Instruct, Q4_1 GGUF dequantised to fp32)",
        "model_source": loaded.source,
        "model_hash": loaded.model_hash,
        "data_dir": str(DATA),
        "settings": {
            "num_fewshot": 0,
            "limit": LIMIT,
            "mmlu_limit_per_subject": MMLU_PER_SUBJECT,
            "batch_size": BATCH_SIZE,
            "dtype": str(next(loaded.model.parameters()).dtype),
            "torch_threads": torch.get_num_threads(),
        },
        "metrics": rows,
        "published": {
            "source": MODEL_CARD,
            "copy_used": MODEL_CARD_COPY,
            "comparison": comparison,
        },
        "third_party_lm_eval": {"source": THIRD_PARTY, "rows": third_party},
        "machine": machine_summary(),
        "started_at": started,
        "finished_at": now(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "accuracy_embedded.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "accuracy_embedded.md").write_text(_markdown(result))
    print(json.dumps(comparison, indent=2))


def _pct(value: float) -> str:
    return f"{100 * float(value):.1f}"


def _markdown(result: dict[str, Any]) -> str:
    rows = result["metrics"]
    lines = [
        "# Embedded SmolLM2-135M-Instruct: accuracy on real benchmark data (offline)",
        "",
        f"Model: {result['model']}; hash `{result['model_hash']}`. Data: `{result['data_dir']}`.",
        "Zero-shot, lm-eval 0.4.13 task templates via `evaluate_accuracy`; ARC and HellaSwag use their "
        f"first {LIMIT} examples, MMLU {MMLU_PER_SUBJECT} per subject (57 x {MMLU_PER_SUBJECT} = "
        f"{57 * MMLU_PER_SUBJECT}). Percent, +- one standard error.",
        "",
        "| task | metric | ours | stderr | examples | few-shot | wall s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['task']} | {r['metric']} | {_pct(r['value'])} | {_pct(r['stderr'])} | "
            f"{r['n_examples']} | {r['num_fewshot']} | {r['wall_s']} |"
        )
    published = result["published"]
    lines += [
        "",
        f"## Beside the published figures ({published['source']})",
        "",
        "| benchmark | published | ours | difference (points) |",
        "|---|---|---|---|",
    ]
    for item in published["comparison"]:
        lines.append(
            f"| {item['published']['what']} | {item['published']['value']:.1f} | "
            f"{_pct(item['ours']['value'])} +- {_pct(item['ours']['stderr'])} ({item['ours_metric']}) | "
            f"{item['difference_points']:+.1f} |"
        )
    third = result["third_party_lm_eval"]
    lines += [
        "",
        f"Third-party lm-eval 0-shot figures for the same model ({third['source']}, 'Baseline'):",
        "",
        "| task | metric | third party (lm-eval, full set) | ours |",
        "|---|---|---|---|",
    ]
    for r in third["rows"]:
        lines.append(
            f"| {r['task']} | {r['metric']} | {r['third_party_lm_eval']:.1f} | "
            f"{r['ours']:.1f} +- {r['ours_stderr']:.1f} |"
        )
    lines += ["", *EXPLANATION, ""]
    return "\n".join(lines)


EXPLANATION = [
    "## Why the numbers differ",
    "",
    "- **4-bit rounding.** The embedded model is the Q4_1 GGUF of SmolLM2-135M-Instruct dequantised "
    "to fp32: every weight carries 4-bit rounding, so it is a slightly degraded copy of the published "
    "bf16 model; on its own this would pull scores at or a little below the published ones. On these "
    "samples the rounding effect is smaller than the sampling error and cannot be separated from it.",
    "- **Sample size.** 200 examples give a standard error of about 3.5 points on a 50% accuracy; the "
    "published figures use the full sets. Every difference above is within about 1.5 standard errors.",
    "- **Subset (HellaSwag above the card).** The local HellaSwag file is the genuine 1000-row subset "
    "of validation, skewed towards ActivityNet items; its first 200 rows are all ActivityNet, not a "
    "random sample of the full set (WikiHow items included), so a higher score than the full-set "
    "figure is not evidence of a better model.",
    "- **Harness and formulation.** The model card uses lighteval. Its MMLU is the *cloze* "
    "formulation (scoring the answer text); lm-eval's `mmlu` scores the letters A-D, where models "
    "this small sit near chance (25%): our 28.9 is about 1.3 standard errors above chance, so its "
    "closeness to the card's cloze 29.3 is a coincidence of two different measurements. Prompt "
    "templates and normalisation of ARC/HellaSwag also differ between harnesses; the third-party "
    "lm-eval figures (full sets) are the closer reference, and ours agree with them within "
    "one standard error.",
]


def render_markdown_only() -> None:
    """Rewrite the .md from the saved .json (no evaluation)."""
    result = json.loads((RESULTS / "accuracy_embedded.json").read_text())
    (RESULTS / "accuracy_embedded.md").write_text(_markdown(result))


if __name__ == "__main__":
    import sys

    render_markdown_only() if "--markdown-only" in sys.argv else main()
