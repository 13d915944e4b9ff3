"""Accuracy of an in-memory (compressed) model on lm-eval benchmarks, as typed metrics.

One config object (:class:`AccuracyConfig`) holds the tasks and the settings that apply to all of them;
each :class:`TaskSpec` may override few-shot count, example limit, metric, batch size, generation
arguments and data files for its task. :func:`evaluate_accuracy` wraps the model in lm-eval's ``HFLM``
without copying or saving it, runs ``lm_eval.simple_evaluate`` once per task (so per-task limits and
few-shot counts are honoured exactly), and turns lm-eval's ``"acc,none"`` keys into
:class:`AccuracyMetric` records that carry their fidelity: the examples actually scored (lm-eval's
``n-samples``) and the few-shot count actually used (lm-eval's ``n-shot``).

Where the data come from (local files or the hub) is decided per task by :mod:`.tasks`; results are
cached per candidate by :mod:`.eval_cache` when the caller supplies a ``cache_key``.

Example:
    >>> config = AccuracyConfig.from_cli("arc_easy,hellaswag", limit=20)
    >>> [t.name for t in config.tasks]
    ['arc_easy', 'hellaswag']
    >>> metrics = evaluate_accuracy(model, tokenizer, config, cache_key="m1:r1")  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from agentic_compression.core.metrics import AccuracyMetric
from agentic_compression.errors import AgenticCompressionError, UserInputError
from agentic_compression.evaluation.eval_cache import EvaluationCache, cache_entry_key
from agentic_compression.evaluation.local_tasks import materialise, resolve_task
from agentic_compression.evaluation.tasks import (
    GENERATOR_VERSION,
    MetricChoice,
    ResolvedTask,
    benchmark,
    lm_eval_version,
    resolve_data_dir,
)

logger = logging.getLogger(__name__)

_ALL_METRICS = "all"
_TASK_OPTION_KEYS = {"limit", "num_fewshot", "fewshot", "metric", "batch_size"}


def _positive(value: int | None, what: str, *, minimum: int) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int) or value < minimum
    ):
        raise UserInputError(f"{what} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class TaskSpec:
    """One benchmark to run, with optional per-task overrides of the config's defaults.

    ``metric`` names one metric (``"acc_norm"``), a metric with its lm-eval filter
    (``"exact_match,strict-match"``) or ``"all"``; None means the task's primary metric.
    ``data_files`` maps split names to files and replaces the data folder's files for this task.

    Example:
        >>> TaskSpec("gsm8k", limit=50, gen_kwargs={"max_gen_toks": 128}).limit
        50
    """

    name: str
    num_fewshot: int | None = None
    limit: int | None = None
    metric: str | None = None
    batch_size: int | None = None
    # Left out of the hash (mappings are unhashable); equality still compares them.
    gen_kwargs: Mapping[str, Any] | None = field(default=None, hash=False)
    data_files: Mapping[str, Path] | None = field(default=None, hash=False)

    def __post_init__(self) -> None:
        bench = benchmark(self.name)
        _positive(self.num_fewshot, f"{self.name}: num_fewshot", minimum=0)
        _positive(self.limit, f"{self.name}: limit", minimum=1)
        _positive(self.batch_size, f"{self.name}: batch_size", minimum=1)
        self.selected_metrics()  # validates the metric name
        if self.gen_kwargs is not None:
            if not bench.generates:
                raise UserInputError(
                    f"{self.name} is scored by log-likelihood, not generation: gen_kwargs apply only "
                    "to generation tasks (gsm8k, humaneval, bbh)"
                )
            object.__setattr__(self, "gen_kwargs", dict(self.gen_kwargs))
        if self.data_files is not None:
            if bench.kind == "group":
                raise UserInputError(
                    f"{self.name} is a group of tasks: point data_dir at a folder in its layout "
                    "instead of passing data_files"
                )
            known = (
                {s for s, _ in bench.data_files} | {s for s, _ in bench.optional_files} | {"test"}
            )
            unknown = sorted(set(self.data_files) - known)
            if unknown:
                raise UserInputError(
                    f"{self.name}: unknown data_files split(s) {unknown}; expected {sorted(known)}"
                )
            object.__setattr__(
                self, "data_files", {s: Path(p).expanduser() for s, p in self.data_files.items()}
            )

    def selected_metrics(self) -> tuple[MetricChoice, ...] | None:
        """The metrics to report (None = every metric the task reports)."""
        bench = benchmark(self.name)
        if self.metric is None:
            return (bench.primary_metric,)
        if self.metric == _ALL_METRICS:
            return None
        name, _, filter_name = self.metric.partition(",")
        chosen = tuple(
            m
            for m in bench.metrics
            if m.metric == name and (not filter_name or m.filter == filter_name)
        )
        if not chosen:
            offered = ", ".join(m.key for m in bench.metrics)
            raise UserInputError(
                f"{self.name} has no metric {self.metric!r}; choose one of: {offered}, or 'all'"
            )
        return chosen[:1]


@dataclass(frozen=True)
class AccuracyConfig:
    """What to evaluate and how; per-task overrides live in each :class:`TaskSpec`.

    ``data_dir`` None means ``$AGENTIC_COMPRESSION_DATA``, else the folder prepared by
    ``agentic-compress data prepare``, else the hub. ``limit`` and ``num_fewshot`` are defaults for
    tasks that do not set their own (None: the full set, the task's own few-shot count).
    ``cache_path`` None means ``home()/eval_cache.sqlite``.

    Example:
        >>> AccuracyConfig(tasks=("arc_easy",), limit=20).tasks[0].name
        'arc_easy'
    """

    tasks: tuple[TaskSpec, ...]
    data_dir: Path | None = None
    # 8 keeps the padded batches of 135M-class models within a few hundred MB on CPU.
    batch_size: int = 8
    limit: int | None = None
    num_fewshot: int | None = None
    allow_code_execution: bool = False
    seed: int = 1234
    cache_path: Path | None = None
    # Per HumanEval program: wall-clock seconds and address-space cap of the checker process.
    code_timeout_s: float = 10.0
    code_memory_mb: int = 2048

    def __post_init__(self) -> None:
        specs = tuple(TaskSpec(t) if isinstance(t, str) else t for t in self.tasks)
        if not specs:
            raise UserInputError("no tasks given; name at least one (see `agentic-compress tasks`)")
        names = [s.name for s in specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise UserInputError(f"task(s) listed twice: {', '.join(duplicates)}")
        object.__setattr__(self, "tasks", specs)
        if self.data_dir is not None:
            object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())
        if self.cache_path is not None:
            object.__setattr__(self, "cache_path", Path(self.cache_path).expanduser())
        _positive(self.batch_size, "batch_size", minimum=1)
        _positive(self.limit, "limit", minimum=1)
        _positive(self.num_fewshot, "num_fewshot", minimum=0)
        if not self.code_timeout_s > 0 or self.code_memory_mb < 64:
            raise UserInputError("code_timeout_s must be > 0 and code_memory_mb >= 64")

    @classmethod
    def from_cli(cls, tasks: str, **settings: Any) -> AccuracyConfig:
        """Build from a CLI string: comma-separated tasks, each with optional ``:key=value`` options.

        Options: ``limit``, ``num_fewshot`` (or ``fewshot``), ``batch_size``, ``metric`` (write a
        filter as ``metric=exact_match@strict-match``). Other settings are keyword arguments
        (``limit``, ``data_dir``, ``seed``, ``allow_code_execution`` ...).

        Example:
            >>> config = AccuracyConfig.from_cli("mmlu:num_fewshot=5,arc_easy", limit=50)
            >>> config.tasks[0].num_fewshot, config.limit
            (5, 50)
        """
        specs = [_parse_task(part.strip()) for part in tasks.split(",") if part.strip()]
        return cls(tasks=tuple(specs), **settings)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, to store beside the results it produced."""
        return json_ready(asdict(self))


def json_ready(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _parse_task(part: str) -> TaskSpec:
    name, *options = part.split(":")
    values: dict[str, Any] = {}
    for option in options:
        key, sep, raw = option.partition("=")
        if not sep or key not in _TASK_OPTION_KEYS:
            raise UserInputError(
                f"bad task option {option!r} in {part!r}; use name:key=value with key one of "
                f"{', '.join(sorted(_TASK_OPTION_KEYS))}"
            )
        key = "num_fewshot" if key == "fewshot" else key
        if key == "metric":
            values[key] = raw.replace("@", ",")
            continue
        try:
            values[key] = int(raw)
        except ValueError:
            raise UserInputError(f"{key} must be an integer in {part!r}, got {raw!r}") from None
    return TaskSpec(name.strip(), **values)


@dataclass(frozen=True)
class PlannedTask:
    """A task spec resolved against the config: data source and the settings that will be used."""

    spec: TaskSpec
    resolved: ResolvedTask
    limit: int | None
    num_fewshot: int | None
    batch_size: int
    metrics: tuple[MetricChoice, ...] | None
    gen_kwargs: dict[str, Any] | None = field(default=None)

    def cache_fields(self, config: AccuracyConfig) -> dict[str, Any]:
        """Everything that decides this task's score, for the evaluation-cache key."""
        return {
            "task": self.spec.name,
            "source": self.resolved.source,
            "lm_eval_task": self.resolved.lm_eval_task,
            "data": self.resolved.data_fingerprint,
            "yaml": [list(item) for item in self.resolved.yaml_files],
            "limit": self.limit,
            "num_fewshot": self.num_fewshot,
            "metrics": None if self.metrics is None else [m.key for m in self.metrics],
            "gen_kwargs": self.gen_kwargs,
            "seed": config.seed,
            "lm_eval": lm_eval_version(),
            "generator": GENERATOR_VERSION,
        }


def plan_evaluation(config: AccuracyConfig) -> tuple[PlannedTask, ...]:
    """Resolve every task of ``config``; refuse what cannot run before any model work starts.

    Example:
        >>> [p.resolved.source for p in plan_evaluation(AccuracyConfig(("arc_easy",)))]  # doctest: +SKIP
        ['local']
    """
    data_dir = resolve_data_dir(config.data_dir)
    planned = []
    for spec in config.tasks:
        bench = benchmark(spec.name)
        if bench.needs_code_execution and not config.allow_code_execution:
            raise UserInputError(
                f"{spec.name} runs model-written code; opt in with --allow-code-execution "
                "(AccuracyConfig(allow_code_execution=True)), ideally inside a container"
            )
        resolved = resolve_task(
            spec.name,
            data_dir,
            data_files=spec.data_files,
            code_timeout_s=config.code_timeout_s,
            code_memory_mb=config.code_memory_mb,
        )
        num_fewshot = spec.num_fewshot if spec.num_fewshot is not None else config.num_fewshot
        if num_fewshot and not resolved.has_fewshot_data:
            raise UserInputError(
                f"{spec.name} few-shot needs MMLU's dev split, which {data_dir} lacks (a folder made "
                "by `data prepare` has test data only): use num_fewshot 0 or a --data-dir with dev/"
            )
        if resolved.source == "hub" and data_dir is not None:
            logger.warning(
                "%s: no local data under %s; using lm-eval's built-in task (downloads %s)",
                spec.name,
                data_dir,
                bench.hub_task,
            )
        planned.append(
            PlannedTask(
                spec=spec,
                resolved=resolved,
                limit=spec.limit if spec.limit is not None else config.limit,
                num_fewshot=num_fewshot,
                batch_size=spec.batch_size or config.batch_size,
                metrics=spec.selected_metrics(),
                gen_kwargs=dict(spec.gen_kwargs) if spec.gen_kwargs is not None else None,
            )
        )
    return tuple(planned)


def evaluate_accuracy(
    model: Any,
    tokenizer: Any,
    config: AccuracyConfig,
    *,
    cache_key: str | None = None,
    cache: EvaluationCache | None = None,
) -> tuple[AccuracyMetric, ...]:
    """Evaluate ``model`` (in memory, never copied) on ``config``'s tasks; metrics in task order.

    ``model`` is a Hugging Face model (with its ``tokenizer``) or a runtime
    :class:`~agentic_compression.runtimes.base.Deployment` (``tokenizer`` unused), whose own lm-eval
    model then scores every request.

    ``cache_key`` identifies the candidate (``"<model_hash>:<recipe_hash>"``); with it, each task's
    metrics are looked up in, and stored to, the evaluation cache (``cache``, else one at
    ``config.cache_path``). Tasks found there never touch the model. None disables caching.

    Example:
        >>> loaded = load_model("smollm2-135m")  # doctest: +SKIP
        >>> config = AccuracyConfig.from_cli("arc_easy", limit=20)
        >>> evaluate_accuracy(loaded.model, loaded.tokenizer, config)  # doctest: +SKIP
        (AccuracyMetric(task='arc_easy', metric='acc', value=0.55, stderr=0.114..., ...),)
    """
    plan = plan_evaluation(config)
    store: EvaluationCache | None = None
    if cache_key is not None:
        if not cache_key.strip():
            raise UserInputError("cache_key must be a non-empty '<model_hash>:<recipe_hash>'")
        store = cache if cache is not None else EvaluationCache(config.cache_path)

    found: dict[int, tuple[AccuracyMetric, ...]] = {}
    pending: list[tuple[int, PlannedTask, str | None]] = []
    where = _scoring_environment(model) if store is not None else {}
    for index, task in enumerate(plan):
        entry_key = None
        if store is not None and cache_key is not None:
            entry_key = cache_entry_key(cache_key, {**task.cache_fields(config), **where})
            hit = store.get(entry_key)
            if hit is not None:
                found[index] = tuple(m.model_copy(update={"from_cache": True}) for m in hit)
                continue
        pending.append((index, task, entry_key))

    if pending:
        if model is None or (tokenizer is None and not _is_deployment(model)):
            raise ValueError("a model and tokenizer are needed: some tasks are not in the cache")
        include_dir = materialise(tuple(task.resolved for _, task, _ in pending))
        wrappers: dict[int, Any] = {}  # one lm-eval wrapper per batch size, around the same model
        for index, task, entry_key in pending:
            if task.batch_size not in wrappers:
                wrappers[task.batch_size] = _wrap(model, tokenizer, task.batch_size)
            metrics = _run_task(wrappers[task.batch_size], task, config, include_dir)
            found[index] = metrics
            if store is not None and entry_key is not None and cache_key is not None:
                store.put(
                    entry_key,
                    metrics,
                    candidate_key=cache_key,
                    task=task.spec.name,
                    task_config=task.cache_fields(config),
                )
    return tuple(metric for index in range(len(plan)) for metric in found[index])


def _scoring_environment(model: Any) -> dict[str, Any]:
    """What besides the task decides a score: the device and the libraries that computed it
    (``model`` None, a cache-only lookup, means the default: torch on the CPU)."""
    from importlib.metadata import PackageNotFoundError, version

    if model is None:
        device, runtime = "cpu", "torch"
    elif _is_deployment(model):
        device, runtime = model.device, model.info.runtime
    else:
        device, runtime = str(next(model.parameters()).device), "torch"
    packages = {"torch": ("torch", "transformers"), "llamacpp": ("xllamacpp",)}
    libraries: dict[str, str] = {}
    for name in ("torch", *packages.get(runtime, ())):
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = "not installed"
    return {"device": device, "runtime": runtime, "libraries": libraries}


def _is_deployment(model: Any) -> bool:
    from agentic_compression.runtimes.base import Deployment

    return isinstance(model, Deployment)


@functools.lru_cache(maxsize=8)
def _task_manager(include_dir: Path | None, include_defaults: bool) -> Any:
    # Indexing lm-eval's ~10k built-in YAMLs takes seconds: only done when a hub task needs it.
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_dir, include_defaults=include_defaults)


def _wrap(model: Any, tokenizer: Any, batch_size: int) -> Any:
    """The lm-eval model: a deployment's own (its runtime's log-likelihoods), or lm-eval's HFLM
    around an in-memory model (no copy, no save, the model's own device)."""
    from lm_eval.models.huggingface import HFLM

    if _is_deployment(model):
        return model.lm_eval_model(batch_size)
    return HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size)


def _run_task(
    lm: Any, task: PlannedTask, config: AccuracyConfig, include_dir: Path | None
) -> tuple[AccuracyMetric, ...]:
    import lm_eval

    hub = task.resolved.source == "hub"
    manager = _task_manager(None if hub else include_dir, hub)
    logger.info(
        "evaluating %s (%s, limit=%s, num_fewshot=%s)",
        task.spec.name,
        task.resolved.lm_eval_task,
        task.limit,
        task.num_fewshot,
    )
    try:
        results = lm_eval.simple_evaluate(
            model=lm,
            tasks=[task.resolved.lm_eval_task],
            num_fewshot=task.num_fewshot,
            limit=task.limit,
            gen_kwargs=task.gen_kwargs,
            task_manager=manager,
            log_samples=False,
            random_seed=config.seed,
            numpy_random_seed=config.seed,
            torch_random_seed=config.seed,
            fewshot_random_seed=config.seed,
            confirm_run_unsafe_code=config.allow_code_execution,
        )
    except ConnectionError as error:
        if not hub:
            raise
        raise UserInputError(
            f"{task.spec.name}: cannot download {task.resolved.lm_eval_task} from the hub "
            f"({str(error)[:120]}); pass --data-dir with local files or check the connection"
        ) from None
    if results is None:  # pragma: no cover - only non-zero ranks of a distributed run
        raise AgenticCompressionError("lm-eval returned no results (not rank 0)")
    return metrics_from_results(results, task)


def _leaves(results: Mapping[str, Any], name: str) -> list[str]:
    children = results.get("group_subtasks", {}).get(name)
    if not children:
        return [name]
    return [leaf for child in children for leaf in _leaves(results, child)]


def _as_float(value: Any) -> float | None:
    if value is None or isinstance(value, str):
        return None  # lm-eval writes "N/A" where no stderr exists
    number = float(value)
    return None if math.isnan(number) else number


def metrics_from_results(
    results: Mapping[str, Any], task: PlannedTask
) -> tuple[AccuracyMetric, ...]:
    """Turn one task's lm-eval results into typed metrics (``"acc,none"`` -> metric + filter)."""
    name = task.resolved.lm_eval_task
    row = results["results"].get(name)
    if row is None:
        raise AgenticCompressionError(f"lm-eval returned no results for {name}")
    leaves = _leaves(results, name)
    n_examples = sum(int(results["n-samples"][leaf]["effective"]) for leaf in leaves)
    shots = {int(results["n-shot"][leaf]) for leaf in leaves if leaf in results["n-shot"]}
    num_fewshot = max(shots) if shots else int(results["n-shot"].get(name, 0))
    directions: dict[str, bool] = {}
    for source in [name, *leaves]:
        for metric, higher in results.get("higher_is_better", {}).get(source, {}).items():
            if higher is not None:
                directions.setdefault(metric, bool(higher))

    reported: list[AccuracyMetric] = []
    for key, value in row.items():
        metric, sep, filter_name = key.partition(",")
        if not sep or metric.endswith("_stderr") or not isinstance(value, int | float):
            continue
        if task.metrics is not None and MetricChoice(metric, filter_name) not in task.metrics:
            continue
        if metric not in directions:
            raise AgenticCompressionError(f"lm-eval gave no direction for {name} metric {metric}")
        reported.append(
            AccuracyMetric(
                task=task.spec.name,
                metric=metric,
                value=float(value),
                stderr=_as_float(row.get(f"{metric}_stderr,{filter_name}")),
                higher_is_better=directions[metric],
                n_examples=n_examples,
                num_fewshot=num_fewshot,
                filter=filter_name,
                data_source=task.resolved.source,
                data_fingerprint=task.resolved.data_fingerprint or None,
            )
        )
    if not reported:
        wanted = "any metric" if task.metrics is None else ", ".join(m.key for m in task.metrics)
        offered = ", ".join(k for k in row if "," in k and "_stderr" not in k)
        raise AgenticCompressionError(f"{name}: lm-eval reported no {wanted} (it gave: {offered})")
    return tuple(reported)
