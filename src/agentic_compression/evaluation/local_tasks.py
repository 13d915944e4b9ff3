"""Local lm-eval tasks: YAMLs that run lm-eval's own task on local files, and their fingerprints.

A benchmark resolved to the ``local`` source (see :mod:`.tasks`) runs as a generated task YAML that
``include:``s lm-eval's built-in YAML and overrides only the data source (``dataset_path: json`` +
``dataset_kwargs.data_files``), so prompts, metrics and few-shot rules stay exactly lm-eval's. The
generated files live in a content-addressed folder under ``home()/lm_eval_tasks``, written through a
staging folder and an atomic rename, so concurrent runs never see a half-written task. A task's
``data_fingerprint`` (a hash of its files) goes into every evaluation-cache key and every
:class:`~agentic_compression.core.metrics.AccuracyMetric`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.humaneval import humaneval_task_files
from agentic_compression.evaluation.tasks import (
    DATA_ENV_VAR,
    LOCAL_SUFFIX,
    Benchmark,
    ResolvedTask,
    availability,
    benchmark,
    catalogue,
    hub_dataset_cached,
    lm_eval_tasks_dir,
    mmlu_subjects,
)
from agentic_compression.hub import hub_unavailable
from agentic_compression.paths import home

_MMLU_CATEGORIES = ("stem", "other", "social_sciences", "humanities")
_SPLIT_KEYS = (
    ("train", "training_split"),
    ("validation", "validation_split"),
    ("test", "test_split"),
)


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
    unavailable = hub_unavailable()
    if unavailable and not hub_dataset_cached(name):
        where = f"under {data_dir}" if data_dir is not None else "(no data folder configured)"
        raise UserInputError(
            f"{name} has no offline data {where} and {unavailable}: "
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
