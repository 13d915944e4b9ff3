"""Kill `agentic-compress run` mid-trial with SIGKILL, resume it, and check no trial is lost or repeated.

Shared by the SQLite and the PostgreSQL crash tests. The run uses a tiny random Llama over the real
SmolLM2 tokenizer, 5 arc_easy examples and one small perplexity window per trial, so a trial takes
a few seconds on two CPU cores.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agentic_compression.results.store import make_results_store

# Runs the real CLI; registers the search commands if cli/app.py does not (yet).
CLI = """
import sys
from agentic_compression.cli import app as cli
from agentic_compression.cli.search_commands import register
names = {c.name or c.callback.__name__ for c in cli.app.registered_commands}
if "run" not in names:
    register(cli.app)
sys.argv[0] = "agentic-compress"
cli.main()
"""

# Small per-trial work (hidden options of `run`, see docs/DEVELOPING.md).
QUICK = [
    "--tasks", "arc_easy", "--limit", "5", "--ppl-windows", "1", "--ppl-seq-len", "64",
    "--latency-prompt-tokens", "16", "--latency-new-tokens", "4", "--latency-repeats", "1",
    "--latency-warmup", "0", "--carbon-budget-kg", "1.0", "--patience", "50", "--device", "cpu",
]  # fmt: skip


def save_tiny_llama(folder: Path, tokenizer: Any) -> Path:
    """A 2-layer random Llama (hidden 64) with the SmolLM2 tokenizer, saved as a model folder."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
        tie_word_embeddings=True,
    )  # fmt: skip
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def cli_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "AGENTIC_COMPRESSION_HOME": str(home),  # its own evaluation cache
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def start_cli(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("wb")
    return subprocess.Popen(
        [sys.executable, "-c", CLI, *args], stdout=handle, stderr=subprocess.STDOUT, env=env
    )


def wait_until(condition: Callable[[], bool], process: subprocess.Popen[bytes], log: Path,
               timeout_s: float) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        if process.poll() is not None:
            raise AssertionError(
                f"the run exited ({process.returncode}):\n{log.read_text()[-4000:]}"
            )
        time.sleep(0.1)
    process.kill()
    raise AssertionError(f"timed out:\n{log.read_text()[-4000:]}")


def crash_and_resume(
    tmp_path: Path, model: Path, store_url: str, run_id: str, extra: list[str], max_trials: int = 3,
    kill_during: int = 1,
) -> None:  # fmt: skip
    """Start a run, SIGKILL it while trial ``kill_during`` is being measured, resume, check."""
    env = cli_env(tmp_path / "home")
    runs_dir = tmp_path / "runs"
    common = ["--runs-dir", str(runs_dir), "--store-url", store_url]
    args = ["run", "--model", str(model), "--max-trials", str(max_trials), "--run-id", run_id,
            *common, *QUICK, *extra]  # fmt: skip
    log = tmp_path / "run.log"
    process = start_cli(args, env, log)
    store = make_results_store(store_url)
    try:

        def measuring_trial() -> bool:
            run = store.get_run(run_id)
            progress = (run.progress or "") if run else ""
            # Past "starting": the candidate is being compressed or measured right now.
            return progress.startswith(f"trial {kill_during} (") and "starting" not in progress

        wait_until(measuring_trial, process, log, timeout_s=120)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
        killed_at = [t.number for t in store.list_trials(run_id)]
        assert killed_at == list(range(kill_during)), killed_at
        record = store.get_run(run_id)
        assert record is not None and record.status == "running"  # nobody could mark it

        resume_log = tmp_path / "resume.log"
        resumed = start_cli(["resume", run_id, *common], env, resume_log)
        assert resumed.wait(timeout=240) == 0, resume_log.read_text()[-4000:]

        trials = store.list_trials(run_id)
        assert [t.number for t in trials] == list(range(max_trials))  # none lost, none repeated
        assert len({t.recipe_hash for t in trials}) == max_trials
        assert len({t.candidate_id for t in trials}) == max_trials
        finished = store.get_run(run_id)
        assert finished is not None and finished.status == "finished"
        assert finished.stop_reason == "trial_budget"
        run_dir = runs_dir / run_id
        import json

        results = json.loads((run_dir / "results.json").read_text())
        assert [t["number"] for t in results["trials"]] == list(range(max_trials))
        assert (run_dir / "trials.csv").exists() and (run_dir / "pareto.svg").exists()
        assert "resuming run" in resume_log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
        store.close()
