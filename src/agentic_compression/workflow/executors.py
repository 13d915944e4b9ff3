"""Where candidates are measured: in this process (:class:`LocalExecutor`, the default) or on a Ray
cluster (:class:`RayExecutor`, ``--executor ray``), one candidate per worker at a time.

The graph does not change with the executor. Its evaluate step hands the executor a batch of jobs
(trial number, recipe, fidelity) and records each result in the results store as it arrives; the
planner is asked for ``executor.slots`` recipes at a time, so a batch of parallel proposals differ.
Only the driver (the process running the graph) writes the results store and the checkpoints: a
worker measures and returns, nothing more. So a worker that dies mid-trial loses its own trial
only; the trial runs again on a fresh worker, up to ``max_tries`` times, then is recorded failed.
A driver killed mid-batch resumes (on any machine that reaches the same Postgres store and
checkpointer) at that batch: trials already stored are reused, the others measured again.

Placement: a Ray worker is an actor that loads the base model once and declares its resources
(``cpus_per_worker``, ``memory_gb_per_worker``, one GPU for GPU workers). A candidate served by a
GPU runtime (vLLM), or any candidate of a run on ``--device cuda``, goes to a GPU worker; the rest to
CPU workers. Each result records the host and worker that measured it (``provenance.host``,
``provenance.worker``), and a worker whose evaluation settings hash differs from the driver's
(other data, another model file) refuses to measure.

What is not measured: the energy of a trial whose worker died is lost with the worker (the local
executor charges it; see ``ResultsStore.record_phase_cost``).

Example:
    >>> LocalExecutor().slots
    1
    >>> needs_gpu({"name": "x", "steps": [], "runtime": {"name": "vllm"}}, "cpu")
    True
"""

from __future__ import annotations

import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.core.metrics import CandidateResult, EnergyReading
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.screening import Fidelity

if TYPE_CHECKING:
    from agentic_compression.workflow.evaluator import Evaluator

log = logging.getLogger(__name__)  # the product's logger: shown on the terminal

#: Runtimes that need a CUDA GPU whatever the run's device.
GPU_RUNTIMES = frozenset({"vllm"})
#: How long a new worker may take to start (load the model) before the cluster is judged unable
#: to place it.
READY_TIMEOUT_S = 600.0


def _worker_lost() -> tuple[type[BaseException], ...]:
    """Ray's errors for a worker (or its node) gone mid-task: the task is worth another try."""
    import ray.exceptions as errors

    return (errors.RayActorError, errors.WorkerCrashedError, errors.NodeDiedError,
            errors.ObjectLostError, errors.OutOfMemoryError)  # fmt: skip


@dataclass(frozen=True)
class Job:
    """One candidate to measure as trial ``number``."""

    number: int
    recipe: Recipe
    fidelity: Fidelity = "full"


@dataclass(frozen=True)
class Done:
    """A measured job: the result (``status="failed"`` included), its wall time, who measured it."""

    job: Job
    result: CandidateResult
    seconds: float
    worker: str


JobProgress = Callable[[Job, str], None]
JobEnergy = Callable[[Job, EnergyReading], None]


def ray_slots(device: str, runtimes: str | None, workers: int, gpu_workers: int) -> int:
    """How many candidates a Ray run measures at once: the workers its candidates can use (a
    ``--device cuda`` run only GPU workers; otherwise CPU workers, plus GPU workers when a GPU
    runtime may be searched). Worker counts that cannot serve the device are a user error.

    >>> ray_slots("cpu", "torch,llamacpp", 2, 1)
    2
    >>> ray_slots("cuda", None, 2, 1)
    1
    """
    if device.startswith("cuda"):  # every candidate goes to a GPU worker
        if gpu_workers == 0:
            raise UserInputError(
                "--device cuda measures every candidate on a GPU worker: set --gpu-workers"
            )
        return gpu_workers
    if workers == 0:
        raise UserInputError(
            "--workers 0: CPU candidates need CPU workers (GPU workers take only GPU runtimes "
            "and --device cuda)"
        )
    gpu_runtimes = runtimes is None or any(r in runtimes for r in GPU_RUNTIMES)
    return workers + (gpu_workers if gpu_runtimes else 0)


def needs_gpu(recipe: Mapping[str, Any], device: str) -> bool:
    """Whether the candidate must run on a GPU worker (its runtime, or the run's device)."""
    runtime = recipe.get("runtime") or {}
    return runtime.get("name") in GPU_RUNTIMES or device.startswith("cuda")


class Executor(ABC):
    """Measures batches of jobs; ``slots`` is how many run at once."""

    slots: int = 1

    @abstractmethod
    def run(
        self,
        evaluator: Evaluator,
        jobs: Sequence[Job],
        progress: JobProgress,
        on_energy: JobEnergy,
    ) -> Iterator[Done]:
        """Measure ``jobs``, yielding each as it finishes (in any order); never raises for a
        candidate's own failure (that is a failed result)."""

    def describe(self) -> str:
        return f"{type(self).__name__} ({self.slots} at a time)"

    def close(self) -> None:  # noqa: B027 (optional: only executors with workers release them)
        """Release workers (nothing for the local executor)."""


class LocalExecutor(Executor):
    """One job after another in this process, with the evaluator the run built."""

    def run(
        self,
        evaluator: Evaluator,
        jobs: Sequence[Job],
        progress: JobProgress,
        on_energy: JobEnergy,
    ) -> Iterator[Done]:
        worker = f"local process {os.getpid()} on {socket.gethostname()}"
        for job in jobs:
            started = time.perf_counter()
            result = evaluator.evaluate(
                job.recipe,
                lambda text, job=job: progress(job, text),  # type: ignore[misc]
                on_energy=lambda reading, job=job: on_energy(job, reading),  # type: ignore[misc]
                fidelity=job.fidelity,
            )
            yield Done(job, result, time.perf_counter() - started, worker)

    def describe(self) -> str:
        return "local (this process, one candidate at a time)"


@dataclass(frozen=True)
class WorkerSpec:
    """What a Ray worker needs to build the run's evaluator on its own machine."""

    #: The run's :class:`~agentic_compression.workflow.runner.SearchSettings` as JSON data.
    settings: dict[str, Any]
    #: The driver's evaluation settings hash: a worker measuring under others refuses.
    config_hash: str
    #: The grid intensity the driver priced CO2 at (so every worker prices alike), or None.
    intensity: Any = None


@dataclass
class RayExecutor(Executor):
    """Candidates on Ray actors: ``workers`` CPU workers and ``gpu_workers`` GPU workers."""

    spec: WorkerSpec
    address: str | None = None
    workers: int = 2
    gpu_workers: int = 0
    cpus_per_worker: float = 1.0
    memory_gb_per_worker: float | None = None
    max_tries: int = 3
    #: Extra ``ray.init`` arguments (tests pass ``num_cpus`` for a local cluster).
    init_args: dict[str, Any] = field(default_factory=dict)
    _pools: dict[bool, list[Any]] = field(default_factory=dict, init=False, repr=False)
    #: Each started worker's (node id, label).
    _nodes: dict[Any, tuple[str, str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.workers < 0 or self.gpu_workers < 0 or self.workers + self.gpu_workers == 0:
            raise UserInputError("--workers and --gpu-workers: at least one worker in all")
        if self.max_tries < 1:
            raise UserInputError("--max-tries: at least 1")
        settings = self.spec.settings
        self.slots = ray_slots(
            str(settings.get("device", "cpu")), settings.get("runtimes"), self.workers,
            self.gpu_workers,
        )  # fmt: skip

    def describe(self) -> str:
        where = self.address or "a local Ray instance"
        return f"Ray at {where}: {self.workers} CPU worker(s) x {self.cpus_per_worker:g} CPU" + (
            f", {self.gpu_workers} GPU worker(s)" if self.gpu_workers else ""
        )

    def _connect(self) -> Any:
        try:
            import ray
        except ImportError as error:
            raise UserInputError(
                "--executor ray needs Ray: pip install 'agentic-compression[ray]'"
            ) from error
        if not ray.is_initialized():
            try:
                ray.init(
                    address=self.address,
                    log_to_driver=False,
                    include_dashboard=False,
                    **self.init_args,
                )
            except (ConnectionError, RuntimeError, ValueError) as error:
                raise UserInputError(
                    f"cannot reach the Ray cluster at {self.address or 'local'}: {error}; "
                    "check --ray-address (ray://host:10001 or host:6379) or start it with "
                    "`ray start --head`"
                ) from error
        return ray

    def _new_workers(self, gpu: bool, count: int) -> list[Any]:
        """``count`` started workers; one that cannot start (its node lacks the model or the
        data, or measures under other settings) is a one-line error, never a retried trial."""
        ray = self._connect()
        options: dict[str, Any] = {"num_cpus": self.cpus_per_worker, "num_gpus": 1 if gpu else 0}
        if self.memory_gb_per_worker is not None:
            options["memory"] = int(self.memory_gb_per_worker * 2**30)
        actor = ray.remote(EvaluationWorker).options(**options)
        workers = [actor.remote(self.spec, gpu) for _ in range(count)]
        ready = [worker.describe.remote() for worker in workers]
        _, waiting = ray.wait(ready, num_returns=len(ready), timeout=READY_TIMEOUT_S)
        if waiting:
            for worker in workers:
                ray.kill(worker)
            raise UserInputError(
                f"{len(waiting)} Ray worker(s) did not start within {READY_TIMEOUT_S:.0f} s: the "
                "cluster lacks the resources one worker asks for (--cpus-per-worker, "
                "--worker-memory-gb, a GPU) on any single node"
            )
        try:
            described = ray.get(ready)  # in the workers' order (ray.wait's is not)
        except ray.exceptions.RayError as error:
            raise UserInputError(f"a Ray worker could not start: {_last_line(error)}") from None
        for (node, label), worker in zip(described, workers, strict=True):
            self._nodes[worker] = (node, label)
        return workers

    def _pool(self, gpu: bool) -> list[Any]:
        if gpu not in self._pools:
            count = self.gpu_workers if gpu else self.workers
            if count == 0:
                kind = "GPU" if gpu else "CPU"
                raise UserInputError(
                    f"a candidate needs a {kind} worker and this run has none: "
                    f"set --{'gpu-workers' if gpu else 'workers'}"
                )
            self._check_fits(count, gpu)
            self._pools[gpu] = self._new_workers(gpu, count)
            self._warn_shared_nodes()
        return self._pools[gpu]

    def _check_fits(self, count: int, gpu: bool) -> None:
        """Workers hold their resources for the whole run: ones the cluster cannot hold would
        wait for ever, so ask for no more than it has."""
        ray = self._connect()
        total = ray.cluster_resources()
        held = sum(len(pool) for pool in self._pools.values())
        cpus_needed = self.cpus_per_worker * (held + count)
        if cpus_needed > total.get("CPU", 0):
            raise UserInputError(
                f"the Ray cluster has {total.get('CPU', 0):g} CPUs; {held + count} worker(s) x "
                f"--cpus-per-worker {self.cpus_per_worker:g} need {cpus_needed:g}: lower "
                "--workers/--gpu-workers or --cpus-per-worker, or add nodes"
            )
        if gpu and count > total.get("GPU", 0):
            raise UserInputError(
                f"the Ray cluster has {total.get('GPU', 0):g} GPUs; --gpu-workers {count} needs "
                "one each: lower --gpu-workers or add GPU nodes"
            )

    def _warn_shared_nodes(self) -> None:
        nodes = [node for node, _ in self._nodes.values()]
        shared = {node for node in nodes if nodes.count(node) > 1}
        for node in sorted(shared):
            log.warning(
                "%d Ray workers share node %s: a machine-wide energy meter (RAPL, CodeCarbon's "
                "CPU model, NVML) charges each trial for the work of all of them, so energy and "
                "CO2 per trial are overstated there; give each worker a node for energy figures",
                nodes.count(node), node[:8],
            )  # fmt: skip

    def _label(self, worker: Any) -> str:
        node, label = self._nodes[worker]
        others = sum(n == node for n, _ in self._nodes.values()) - 1
        return label + (f"; shares its node with {others} other worker(s)" if others else "")

    def run(
        self,
        evaluator: Evaluator,
        jobs: Sequence[Job],
        progress: JobProgress,
        on_energy: JobEnergy,
    ) -> Iterator[Done]:
        ray = self._connect()
        device = str(self.spec.settings.get("device", "cpu"))
        queues: dict[bool, deque[Job]] = {True: deque(), False: deque()}
        for job in jobs:
            queues[needs_gpu(job.recipe.to_dict(), device)].append(job)
        idle = {gpu: list(self._pool(gpu)) for gpu, queue in queues.items() if queue}
        tries: dict[int, int] = {}
        running: dict[Any, tuple[Job, Any, bool]] = {}

        def start() -> None:
            for gpu, queue in queues.items():
                while queue and idle.get(gpu):
                    job, actor = queue.popleft(), idle[gpu].pop()
                    tries[job.number] = tries.get(job.number, 0) + 1
                    future = actor.evaluate.remote(job.recipe.to_dict(), job.fidelity)
                    running[future] = (job, actor, gpu)
                    progress(
                        job, f"on a Ray {'GPU' if gpu else 'CPU'} worker (try {tries[job.number]})"
                    )

        start()
        while running:
            ready, _ = ray.wait(list(running), num_returns=1)
            future = ready[0]
            job, actor, gpu = running.pop(future)
            try:
                result, seconds = ray.get(future)
            except ray.exceptions.RayTaskError as raised:  # evaluate itself raised: a user error
                cause = raised.cause
                if isinstance(cause, UserInputError):
                    raise UserInputError(str(cause)) from None
                raise
            except _worker_lost() as died:
                self._replace(actor, gpu, idle)
                if tries[job.number] < self.max_tries:
                    log.warning(
                        "trial %d (%s): its Ray worker died (%s); measuring it again on a fresh "
                        "worker (try %d of %d)", job.number, job.recipe.label,
                        type(died).__name__, tries[job.number] + 1, self.max_tries,
                    )  # fmt: skip
                    queues[gpu].appendleft(job)
                else:
                    error = (
                        f"WorkerDied: the Ray worker died {tries[job.number]} time(s) measuring "
                        f"it (the last: {type(died).__name__}: {_last_line(died)})"
                    )
                    failure = evaluator.failure(job.recipe, error)
                    yield Done(job, failure, 0.0, "none: every worker measuring it died")
            else:
                idle.setdefault(gpu, []).append(actor)
                for reading in result.energy:
                    on_energy(job, reading)
                yield Done(job, result, seconds, self._label(actor))
            start()

    def _replace(self, dead: Any, gpu: bool, idle: dict[bool, list[Any]]) -> None:
        import ray

        ray.kill(dead)  # it may only be unreachable: never let it hold its resources
        self._nodes.pop(dead, None)
        pool = self._pools[gpu]
        (fresh,) = self._new_workers(gpu, 1)
        pool[pool.index(dead)] = fresh
        idle.setdefault(gpu, []).append(fresh)

    def close(self) -> None:
        if not self._pools:
            return
        import ray

        for pool in self._pools.values():
            for actor in pool:
                ray.kill(actor)
        self._pools.clear()
        self._nodes.clear()


def _last_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


class EvaluationWorker:
    """A Ray actor: the run's evaluator built on the worker's machine, measuring one job at a time."""

    def __init__(self, spec: WorkerSpec, gpu: bool) -> None:
        from agentic_compression.workflow.runner import SearchSettings, build_evaluator

        settings = SearchSettings.model_validate(spec.settings)
        self.evaluator = build_evaluator(settings, intensity=spec.intensity)
        if self.evaluator.config_hash != spec.config_hash:
            raise UserInputError(
                f"this worker ({socket.gethostname()}) measures under evaluation settings "
                f"{self.evaluator.config_hash}, the run under {spec.config_hash}: give every "
                "node the same model files and benchmark data"
            )
        import ray

        context = ray.get_runtime_context()
        resources = context.get_assigned_resources()
        self.node = context.get_node_id()
        cpus, gpus = resources.get("CPU", 0), resources.get("GPU", 0)
        device = f", {settings.device}" if gpu else ""
        self.label = (
            f"ray worker pid {os.getpid()} on {socket.gethostname()} (node {self.node[:8]}; "
            f"{cpus:g} CPU, {gpus:g} GPU{device})"
        )

    def describe(self) -> tuple[str, str]:
        """(node id, label): answered once the worker has started."""
        return self.node, self.label

    def evaluate(self, recipe: dict[str, Any], fidelity: Fidelity) -> tuple[CandidateResult, float]:
        """Measure one candidate: its result and the seconds it took here."""
        started = time.perf_counter()
        result = self.evaluator.evaluate(
            Recipe.from_dict(recipe), lambda _: None, fidelity=fidelity
        )
        return result, time.perf_counter() - started
