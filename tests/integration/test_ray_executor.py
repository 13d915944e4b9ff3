"""Candidates measured in parallel on a real Ray cluster (started here: one head node, 2 CPUs, two
workers of one CPU each) with the results store and the checkpoints in the local PostgreSQL.

The driver is the real CLI (``run --executor ray --ray-address ...``) on a tiny random Llama, so each
trial takes seconds. Two workers finish a small search while one of them is SIGKILLed mid-trial:
every trial is recorded exactly once, measured in full.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentic_compression.results.store import make_results_store
from conftest import free_port
from crash_harness import QUICK, cli_env, save_tiny_llama, start_cli, wait_until

pytest.importorskip("ray")
pytestmark = pytest.mark.integration

RAY = str(Path(sys.executable).with_name("ray"))
#: Loopback only: Ray otherwise replaces 127.0.0.1 by the machine's network address, and this
#: variable (off: no multi-host cluster) keeps every connection of the test on 127.0.0.1.
LOOPBACK = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    "RAY_AUTH_MODE": "disabled",  # a loopback-only cluster of this test alone
}


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """A one-node Ray cluster with 2 CPUs (so 2 one-CPU workers), stopped after the module."""
    if not Path(RAY).exists() and shutil.which("ray") is None:
        pytest.skip("the ray command is not installed")
    port = free_port()
    env = {**os.environ, **LOOPBACK}
    started = subprocess.run(
        [RAY, "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
         "--num-gpus=0",
         "--include-dashboard=false", "--disable-usage-stats"],
        env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert started.returncode == 0, started.stdout + started.stderr
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)


@pytest.fixture()
def model(tmp_path: Path, embedded_tokenizer) -> Path:  # type: ignore[no-untyped-def]
    return save_tiny_llama(tmp_path / "tiny-llama", embedded_tokenizer)


def _args(model: Path, runs: Path, url: str, address: str, run_id: str, trials: int) -> list[str]:
    return [
        "run", "--model", str(model), "--max-trials", str(trials), "--planner", "offline",
        "--runtime", "torch", "--run-id", run_id, "--runs-dir", str(runs), "--store-url", url,
        "--checkpoint-url", url, "--executor", "ray", "--ray-address", address,
        "--workers", "2", *QUICK,
    ]  # fmt: skip


def _env(home: Path) -> dict[str, str]:
    return {**cli_env(home), **LOOPBACK}


def _second_batch_on_workers(url: str, run_id: str) -> bool:
    """The first batch (trials 0 and 1) is stored and the second has been handed to the workers
    (the progress names trial 2 or 3 on a worker: between batches it still names trial 0 or 1)."""
    with make_results_store(url) as store:
        run = store.get_run(run_id)
        done = store.count_trials(run_id) if run is not None else 0
    progress = (run.progress or "") if run is not None else ""
    return done >= 2 and progress.startswith(("trial 2 ", "trial 3 ")) and "on a Ray" in progress


def _worker_pid(trial) -> int:  # type: ignore[no-untyped-def]
    match = re.search(r"pid (\d+)", trial.result.provenance.worker or "")
    assert match, trial.result.provenance.worker
    return int(match.group(1))


def test_two_workers_finish_a_search_and_a_worker_killed_mid_trial_loses_nothing(
    ray_address: str, schema_url: tuple[str, str], model: Path, tmp_path: Path, benchmarks_dir
) -> None:  # type: ignore[no-untyped-def]
    """Two batches of two: both workers measure the first batch; one is SIGKILLed while the
    second batch is being measured, its trial runs again on a fresh worker, and the store holds
    every trial exactly once."""
    url, _ = schema_url
    log = tmp_path / "cli.log"
    process = start_cli(
        _args(model, tmp_path / "runs", url, ray_address, "ray-run", 4), _env(tmp_path), log
    )

    wait_until(lambda: _second_batch_on_workers(url, "ray-run"), process, log, timeout_s=300)
    workers = subprocess.run(
        ["pgrep", "-f", "ray::EvaluationWorker"], capture_output=True, text=True
    ).stdout.split()
    assert len(workers) == 2, workers
    victim = int(workers[0])
    os.kill(victim, signal.SIGKILL)
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]

    with make_results_store(url) as store:
        trials = store.list_trials("ray-run")
        run = store.get_run("ray-run")
    assert run is not None and run.status == "finished" and run.stop_reason == "trial_budget"
    assert [t.number for t in trials] == [0, 1, 2, 3]  # nothing lost, nothing twice
    assert len({t.recipe_hash for t in trials}) == 4  # each batch of two proposed distinct recipes
    assert all(t.status == "ok" and t.result.metrics is not None for t in trials), [
        t.error for t in trials
    ]
    first_batch = {_worker_pid(t) for t in trials[:2]}
    assert first_batch == {int(w) for w in workers}  # both workers measured, side by side
    pids = {_worker_pid(t) for t in trials}
    assert len(pids) == 3  # the victim's trial was measured again by a fresh worker
    assert all(t.result.provenance.host == socket.gethostname() for t in trials)
    assert all(t.seconds > 0 for t in trials)
    text = log.read_text()
    assert "candidates measured on Ray at 127.0.0.1" in text
    assert "its Ray worker died" in text and "try 2 of 3" in text, text[-3000:]
    for number in range(4):  # one line per trial on the terminal
        assert f"trial {number} " in text


def test_more_workers_than_the_cluster_holds_is_a_one_line_error(
    ray_address: str, model: Path, tmp_path: Path, benchmarks_dir
) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'results.sqlite'}"
    args = _args(model, tmp_path / "runs", url, ray_address, "too-many", 4)
    args[args.index("--workers") + 1] = "3"
    log = tmp_path / "cli.log"
    assert start_cli(args, _env(tmp_path), log).wait(timeout=300) == 2
    text = log.read_text()
    assert "the Ray cluster has 2 CPUs; 3 worker(s) x --cpus-per-worker 1 need 3" in text
    assert "Traceback" not in text


def test_a_driver_killed_mid_batch_resumes_without_losing_or_repeating(
    ray_address: str, schema_url: tuple[str, str], model: Path, tmp_path: Path, benchmarks_dir
) -> None:  # type: ignore[no-untyped-def]
    """SIGKILL the driver while its second batch is on the workers, then `resume` it (as from
    another machine: everything it needs is in Postgres): the batch is measured again, and the
    store ends with every trial once."""
    url, _ = schema_url
    log = tmp_path / "cli.log"
    process = start_cli(
        _args(model, tmp_path / "runs", url, ray_address, "ray-resume", 4), _env(tmp_path), log
    )

    wait_until(lambda: _second_batch_on_workers(url, "ray-resume"), process, log, timeout_s=300)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with make_results_store(url) as store:
        stored = [t.number for t in store.list_trials("ray-resume")]
    assert stored in ([0, 1], [0, 1, 2], [0, 1, 3]), stored  # the first batch, maybe one more

    resume_log = tmp_path / "resume.log"
    common = ["--runs-dir", str(tmp_path / "runs"), "--store-url", url, "--checkpoint-url", url]
    resumed = start_cli(["resume", "ray-resume", *common], _env(tmp_path), resume_log)
    assert resumed.wait(timeout=600) == 0, resume_log.read_text()[-3000:]
    with make_results_store(url) as store:
        trials = store.list_trials("ray-resume")
        run = store.get_run("ray-resume")
    assert run is not None and run.status == "finished" and run.stop_reason == "trial_budget"
    assert [t.number for t in trials] == [0, 1, 2, 3]
    assert len({t.recipe_hash for t in trials}) == 4
    assert all(t.status == "ok" for t in trials), [t.error for t in trials]
    assert "candidates measured on Ray" in resume_log.read_text()


def test_a_trial_whose_worker_dies_max_tries_times_is_recorded_failed(
    ray_address: str, schema_url: tuple[str, str], model: Path, tmp_path: Path, benchmarks_dir
) -> None:  # type: ignore[no-untyped-def]
    """With --max-tries 1 the killed worker's trial is a failed trial (never a front point, a
    knowledge note written); the run goes on and finishes with every other trial measured."""
    url, _ = schema_url
    log = tmp_path / "cli.log"
    args = [*_args(model, tmp_path / "runs", url, ray_address, "ray-fail", 4), "--max-tries", "1"]
    process = start_cli(args, _env(tmp_path), log)
    wait_until(lambda: _second_batch_on_workers(url, "ray-fail"), process, log, timeout_s=300)
    workers = subprocess.run(
        ["pgrep", "-f", "ray::EvaluationWorker"], capture_output=True, text=True
    ).stdout.split()
    os.kill(int(workers[0]), signal.SIGKILL)
    assert process.wait(timeout=600) == 0, log.read_text()[-3000:]

    with make_results_store(url) as store:
        trials = store.list_trials("ray-fail")
    assert [t.number for t in trials] == [0, 1, 2, 3]
    failed = [t for t in trials if t.status == "failed"]
    assert len(failed) == 1 and failed[0].number in (2, 3), [t.error for t in trials]
    assert failed[0].error is not None
    assert failed[0].error.startswith("WorkerDied: the Ray worker died 1 time(s) measuring it")
    assert failed[0].objectives is None and failed[0].result.failed_phase == "worker"
    run_dir = tmp_path / "runs" / "ray-fail"
    results = json.loads((run_dir / "results.json").read_text())
    front = {member["trial"] for member in results["pareto"]["front"]}
    assert failed[0].number not in front
    assert list((run_dir / "knowledge").glob(f"trial-{failed[0].number:04d}-*.md"))
    assert f"trial {failed[0].number} " in log.read_text()
