"""Executors and the evaluate step's batches (Ray itself: tests/integration/test_ray_executor.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from test_workflow_nodes import BAD, GOOD, SMALL, R, context, pending, state, summary

from agentic_compression.errors import UserInputError
from agentic_compression.results.store import SqliteResultsStore
from agentic_compression.workflow import nodes
from agentic_compression.workflow.evaluator import Evaluator
from agentic_compression.workflow.executors import (
    Done,
    Job,
    JobEnergy,
    JobProgress,
    LocalExecutor,
    RayExecutor,
    WorkerSpec,
    needs_gpu,
)
from agentic_compression.workflow.runner import SearchSettings
from workflow_fakes import FakeEvaluator, ScriptedPlanner, table


class Reversed(LocalExecutor):
    """Two slots; finishes the batch in reverse order, as parallel workers may."""

    slots = 2

    def run(
        self, evaluator: Evaluator, jobs: Sequence[Job], progress: JobProgress, on_energy: JobEnergy
    ) -> Iterator[Done]:
        yield from reversed(list(super().run(evaluator, jobs, progress, on_energy)))


@pytest.fixture()
def store(tmp_path: Path) -> SqliteResultsStore:
    from agentic_compression.workflow.runner import create_run

    s = SqliteResultsStore(tmp_path / "results.sqlite")
    create_run(s, "r1", SearchSettings(), "fakeconfig000000")
    return s


def test_gpu_placement_follows_the_runtime_and_the_device() -> None:
    assert needs_gpu(R[0].to_dict(), "cpu") is False
    assert needs_gpu(R[0].to_dict(), "cuda") is True
    assert needs_gpu(R[0].to_dict(), "cuda:1") is True
    assert needs_gpu({"runtime": {"name": "vllm"}}, "cpu") is True
    assert needs_gpu({"runtime": {"name": "llamacpp"}}, "cpu") is False


def test_local_executor_measures_in_order_and_names_its_worker() -> None:
    evaluator = FakeEvaluator(table([(R[0], GOOD), (R[1], BAD)]))
    seen: list[tuple[int, str]] = []
    energy: list[int] = []
    done = list(
        LocalExecutor().run(
            evaluator,
            [Job(0, R[0]), Job(1, R[1], "screen")],
            lambda job, text: seen.append((job.number, text)),
            lambda job, reading: energy.append(job.number),
        )
    )
    assert [d.job.number for d in done] == [0, 1]
    assert evaluator.calls == [R[0].hash, R[1].hash] and evaluator.fidelities == ["full", "screen"]
    assert all(d.worker.startswith("local process") and d.seconds >= 0 for d in done)
    assert seen == [(0, "measuring (fake)"), (1, "measuring (fake)")] and energy == [0, 1]


def test_a_batch_becomes_consecutive_trials_whatever_order_they_finish_in(
    tmp_path: Path, store: SqliteResultsStore
) -> None:
    evaluator = FakeEvaluator(table([(R[0], GOOD), (R[1], SMALL), (R[2], BAD)]))
    s = state(pending=[pending(R[0]), pending(R[1]), pending(R[2])])
    update = nodes.evaluate(s, context(tmp_path), evaluator, store, Reversed())
    assert [t["number"] for t in update["trials"]] == [0, 1]
    assert [t["recipe_hash"] for t in update["trials"]] == [R[0].hash, R[1].hash]
    assert [p["recipe_hash"] for p in update["pending"]] == [R[2].hash]
    assert update["last_batch"] == [0, 1] and update["last_trial"] == 1
    assert update["spent"]["trial_co2_kg"] == pytest.approx(2e-4)  # both trials charged
    assert [t.number for t in store.list_trials("r1")] == [0, 1]
    stored = store.get_trial("r1", 1)
    assert stored is not None and stored.result.provenance.worker is not None
    assert stored.result.provenance.worker.startswith("local process")


def test_a_batch_cut_by_a_kill_measures_only_what_the_store_lacks(
    tmp_path: Path, store: SqliteResultsStore
) -> None:
    first = FakeEvaluator(table([(R[0], GOOD)]))
    nodes.evaluate(state(pending=[pending(R[0])]), context(tmp_path), first, store)
    # The driver died after trial 0 of the batch [0, 1] was stored: the step runs again.
    again = FakeEvaluator(table([(R[1], SMALL)]))
    s = state(pending=[pending(R[0]), pending(R[1])])
    update = nodes.evaluate(s, context(tmp_path), again, store, Reversed())
    assert again.calls == [R[1].hash]
    assert [t["number"] for t in update["trials"]] == [0, 1]
    assert [t.number for t in store.list_trials("r1")] == [0, 1]


def test_the_convergence_counter_counts_every_trial_of_a_batch(tmp_path: Path) -> None:
    ctx = context(tmp_path)
    s = state(summary(0, R[0], GOOD), summary(1, R[1], BAD), summary(2, R[2], BAD),
              trials_without_improvement=1, last_batch=[1, 2], last_trial=2)  # fmt: skip
    assert nodes.update_pareto(s, ctx)["trials_without_improvement"] == 3
    s = state(summary(0, R[0], BAD), summary(1, R[1], BAD), summary(2, R[2], GOOD),
              trials_without_improvement=4, last_batch=[1, 2], last_trial=2)  # fmt: skip
    assert nodes.update_pareto(s, ctx)["trials_without_improvement"] == 0


def test_plan_asks_for_a_proposal_per_parallel_worker(tmp_path: Path) -> None:
    planner = ScriptedPlanner(R)
    ctx = dataclasses.replace(context(tmp_path), parallel=4)
    update = nodes.plan(state(), ctx, planner, FakeEvaluator({}))
    assert [p["recipe_hash"] for p in update["pending"]] == [r.hash for r in R]


def _spec() -> WorkerSpec:
    return WorkerSpec(settings=SearchSettings().model_dump(mode="json"), config_hash="x")


@pytest.mark.parametrize(
    ("workers", "gpu_workers", "max_tries", "message"),
    [(0, 0, 3, "at least one worker"), (-1, 1, 3, "at least one worker"), (2, 0, 0, "--max-tries")],
)
def test_ray_executor_refuses_bad_settings(
    workers: int, gpu_workers: int, max_tries: int, message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        RayExecutor(_spec(), workers=workers, gpu_workers=gpu_workers, max_tries=max_tries)


def test_ray_executor_without_a_gpu_worker_refuses_a_gpu_candidate_before_connecting() -> None:
    executor = RayExecutor(_spec(), workers=2)
    assert executor.slots == 2 and "2 CPU worker(s)" in executor.describe()
    with pytest.raises(UserInputError, match=r"needs a GPU worker.*--gpu-workers"):
        executor._pool(gpu=True)
