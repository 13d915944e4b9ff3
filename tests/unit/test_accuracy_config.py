"""Config objects, task resolution and refusals of the accuracy adapter (no model runs here)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agentic_compression.errors import UserInputError
from agentic_compression.evaluation.accuracy import AccuracyConfig, TaskSpec, plan_evaluation
from agentic_compression.evaluation.local_tasks import materialise, resolve_task
from agentic_compression.evaluation.tasks import (
    HEADLINE_BENCHMARKS,
    availability,
    benchmark,
    catalogue,
    mmlu_subjects,
    resolve_data_dir,
)


@pytest.fixture()
def no_data_anywhere(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No env data folder, an empty cache home (no prepared folder) and empty HF caches."""
    monkeypatch.delenv("AGENTIC_COMPRESSION_DATA", raising=False)
    monkeypatch.setenv("AGENTIC_COMPRESSION_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    return tmp_path


def test_task_string_with_per_task_options() -> None:
    config = AccuracyConfig.from_cli(
        "arc_easy, mmlu:num_fewshot=5:limit=3,gsm8k:metric=exact_match@strict-match:batch_size=2",
        limit=20,
        seed=7,
    )
    assert [t.name for t in config.tasks] == ["arc_easy", "mmlu", "gsm8k"]
    assert config.limit == 20 and config.seed == 7
    assert (config.tasks[1].num_fewshot, config.tasks[1].limit) == (5, 3)
    assert config.tasks[2].metric == "exact_match,strict-match"
    assert config.tasks[2].batch_size == 2
    selected = config.tasks[2].selected_metrics()
    assert selected is not None and [m.key for m in selected] == ["exact_match,strict-match"]


def test_unknown_task_lists_known_ones() -> None:
    with pytest.raises(UserInputError) as caught:
        AccuracyConfig.from_cli("arc_easy,not_a_task")
    message = str(caught.value)
    assert "not_a_task" in message
    for name in ("arc_easy", "hellaswag", "mmlu", "gsm8k", "humaneval", "bbh"):
        assert name in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: AccuracyConfig.from_cli("arc_easy:limit=0"), "limit"),
        (lambda: AccuracyConfig.from_cli("arc_easy:foo=1"), "bad task option"),
        (lambda: AccuracyConfig.from_cli("arc_easy:limit=ten"), "integer"),
        (lambda: AccuracyConfig.from_cli("arc_easy,arc_easy"), "twice"),
        (lambda: AccuracyConfig.from_cli(""), "no tasks"),
        (lambda: TaskSpec("arc_easy", metric="bleu"), "acc,none"),
        (lambda: TaskSpec("hellaswag", gen_kwargs={"max_gen_toks": 5}), "log-likelihood"),
        (lambda: TaskSpec("mmlu", data_files={"test": Path("x.jsonl")}), "group"),
        (lambda: TaskSpec("arc_easy", data_files={"bogus": Path("x.jsonl")}), "bogus"),
        (lambda: AccuracyConfig((TaskSpec("arc_easy"),), batch_size=0), "batch_size"),
    ],
)
def test_bad_input_is_a_one_line_user_error(build: object, fragment: str) -> None:
    with pytest.raises(UserInputError) as caught:
        build()  # type: ignore[operator]
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_configs_are_hashable_values() -> None:
    first = AccuracyConfig((TaskSpec("gsm8k", gen_kwargs={"max_gen_toks": 8}),), limit=3)
    second = AccuracyConfig((TaskSpec("gsm8k", gen_kwargs={"max_gen_toks": 8}),), limit=3)
    assert first == second and hash(first) == hash(second)
    assert first != AccuracyConfig((TaskSpec("gsm8k", gen_kwargs={"max_gen_toks": 9}),), limit=3)


def test_metric_selection() -> None:
    assert [m.key for m in TaskSpec("arc_easy").selected_metrics() or ()] == ["acc,none"]
    assert [m.key for m in TaskSpec("arc_challenge").selected_metrics() or ()] == ["acc_norm,none"]
    assert [m.key for m in TaskSpec("arc_easy", metric="acc_norm").selected_metrics() or ()] == [
        "acc_norm,none"
    ]
    assert TaskSpec("arc_easy", metric="all").selected_metrics() is None


def test_config_round_trips_to_json() -> None:
    config = AccuracyConfig(
        tasks=(
            TaskSpec("gsm8k", gen_kwargs={"max_gen_toks": 8}),
            TaskSpec("arc_easy"),
        ),
        data_dir=Path("/tmp"),
        limit=4,
    )
    data = json.loads(json.dumps(config.to_dict()))
    assert data["tasks"][0]["gen_kwargs"] == {"max_gen_toks": 8}
    assert data["tasks"][1]["name"] == "arc_easy"
    assert data["data_dir"] == "/tmp" and data["limit"] == 4


def test_catalogue_covers_the_issue_benchmarks() -> None:
    entries = catalogue()
    for name in HEADLINE_BENCHMARKS:
        assert name in entries
    assert len(mmlu_subjects()) == 57
    assert benchmark("mmlu").subtasks[0] == "mmlu_abstract_algebra"
    assert all(entries[n].primary_metric.metric for n in HEADLINE_BENCHMARKS)


def test_shared_folder_serves_every_benchmark_but_bbh(benchmarks_dir: Path) -> None:
    for name in HEADLINE_BENCHMARKS:
        found = availability(benchmark(name), benchmarks_dir)
        assert found.available == (name != "bbh"), name
    mmlu = availability(benchmark("mmlu"), benchmarks_dir)
    assert len(mmlu.files) == 114 and mmlu.note == ""  # 57 test + 57 dev files


def test_local_resolution_and_materialised_yaml(benchmarks_dir: Path) -> None:
    resolved = resolve_task("arc_easy", benchmarks_dir)
    assert resolved.source == "local" and resolved.lm_eval_task == "arc_easy_local"
    folder = materialise((resolved,))
    assert folder is not None
    text = (folder / "arc_easy_local.yaml").read_text()
    assert "dataset_path: json" in text
    assert str(benchmarks_dir / "arc" / "ARC-Easy-test.jsonl") in text
    assert materialise((resolved,)) == folder  # content-addressed: reused
    # The data fingerprint follows the files' content, not their names.
    again = resolve_task("arc_easy", benchmarks_dir)
    assert again.data_fingerprint == resolved.data_fingerprint


def test_data_dir_precedence(
    no_data_anywhere: Path, monkeypatch: pytest.MonkeyPatch, benchmarks_dir: Path
) -> None:
    assert resolve_data_dir(None) is None
    prepared = no_data_anywhere / "home" / "benchmarks"
    prepared.mkdir(parents=True)
    assert resolve_data_dir(None) == prepared.resolve()
    monkeypatch.setenv("AGENTIC_COMPRESSION_DATA", str(benchmarks_dir))
    assert resolve_data_dir(None) == benchmarks_dir.resolve()
    assert resolve_data_dir(prepared) == prepared.resolve()
    with pytest.raises(UserInputError, match="does not exist"):
        resolve_data_dir(no_data_anywhere / "missing")


def test_offline_without_data_refuses_with_hint(
    no_data_anywhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(UserInputError) as caught:
        plan_evaluation(AccuracyConfig((TaskSpec("arc_easy"),)))
    assert "--data-dir" in str(caught.value) and "internet" in str(caught.value)


def test_online_without_data_uses_builtin_task(
    no_data_anywhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "0")
    # The network is the outside boundary: this machine may have none, the test is about routing.
    monkeypatch.setattr("agentic_compression.evaluation.local_tasks.hub_unavailable", lambda: None)
    plan = plan_evaluation(
        AccuracyConfig((TaskSpec("arc_easy"), TaskSpec("bbh"), TaskSpec("mmlu")))
    )
    assert [(p.resolved.source, p.resolved.lm_eval_task) for p in plan] == [
        ("hub", "arc_easy"),
        ("hub", "bbh"),
        ("hub", "mmlu"),
    ]


def test_bbh_offline_is_unavailable(benchmarks_dir: Path) -> None:
    with pytest.raises(UserInputError, match="bbh has no offline data"):
        plan_evaluation(AccuracyConfig((TaskSpec("bbh"),), data_dir=benchmarks_dir))


def test_humaneval_needs_explicit_opt_in(benchmarks_dir: Path) -> None:
    with pytest.raises(UserInputError, match="allow-code-execution"):
        plan_evaluation(AccuracyConfig((TaskSpec("humaneval"),), data_dir=benchmarks_dir))
    plan = plan_evaluation(
        AccuracyConfig((TaskSpec("humaneval"),), data_dir=benchmarks_dir, allow_code_execution=True)
    )
    assert plan[0].resolved.source == "local"
    assert plan[0].resolved.files[0][1].name == "HumanEval.jsonl.gz"


def test_per_task_overrides_beat_config_defaults(benchmarks_dir: Path) -> None:
    config = AccuracyConfig(
        (
            TaskSpec("arc_easy", limit=3, num_fewshot=1, batch_size=2),
            TaskSpec("hellaswag"),
        ),
        data_dir=benchmarks_dir,
        limit=9,
        num_fewshot=0,
        batch_size=4,
    )
    first, second = plan_evaluation(config)
    assert (first.limit, first.num_fewshot, first.batch_size) == (3, 1, 2)
    assert (second.limit, second.num_fewshot, second.batch_size) == (9, 0, 4)
    assert first.cache_fields(config) != second.cache_fields(config)


def test_explicit_data_files_override(benchmarks_dir: Path, tmp_path: Path) -> None:
    test_file = tmp_path / "my-arc.jsonl"
    source = benchmarks_dir / "arc" / "ARC-Easy-test.jsonl"
    test_file.write_text("".join(source.read_text().splitlines(keepends=True)[:10]))
    spec = TaskSpec("arc_easy", data_files={"test": test_file})
    (planned,) = plan_evaluation(AccuracyConfig((spec,), data_dir=benchmarks_dir))
    assert planned.resolved.files == (("test", test_file.resolve()),)
    missing = TaskSpec("arc_easy", data_files={"test": tmp_path / "nope.jsonl"})
    with pytest.raises(UserInputError, match="do not exist"):
        plan_evaluation(AccuracyConfig((missing,), data_dir=benchmarks_dir))


def test_offline_hub_cache_still_serves_builtin_tasks(
    no_data_anywhere: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    (no_data_anywhere / "hf" / "hub" / "datasets--allenai--ai2_arc").mkdir(parents=True)
    (planned,) = plan_evaluation(AccuracyConfig((TaskSpec("arc_challenge"),)))
    assert (planned.resolved.source, planned.resolved.lm_eval_task) == ("hub", "arc_challenge")
    with pytest.raises(UserInputError, match="no offline data"):
        plan_evaluation(AccuracyConfig((TaskSpec("hellaswag"),)))
