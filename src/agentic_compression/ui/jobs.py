"""Background CLI processes started from the UI: launch, list, stop.

A job is one ``agentic-compress`` command in a process of its own session (it outlives the page and
the UI), its output appended to ``<folder>/<job id>.log``, and a line in ``<folder>/jobs.jsonl``
(id, pid, command, log, start time). Stopping a job sends SIGTERM to its process group: a search
stopped so is ``interrupted`` in the store and resumes with ``agentic-compress resume``.

Example:
    >>> job = launch(["run", "--max-trials", "4"], Path("runs/.ui-jobs"))   # doctest: +SKIP
    >>> is_alive(job.pid)                                                   # doctest: +SKIP
    True
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from agentic_compression.core.provenance import now


@dataclass(frozen=True)
class Job:
    job_id: str
    pid: int
    command: list[str]
    log: str
    started_at: str

    @property
    def shell(self) -> str:
        return shlex.join(["agentic-compress", *self.command[len(cli_command()) :]])


def cli_command() -> list[str]:
    """How to call the CLI of this installation (the console script beside this Python)."""
    script = Path(sys.executable).with_name("agentic-compress")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "agentic_compression.cli.app"]


def launch(args: list[str], folder: Path, env: dict[str, str] | None = None) -> Job:
    """Start ``agentic-compress ARGS`` in the background; its output goes to a log file."""
    folder.mkdir(parents=True, exist_ok=True)
    job_id = (
        f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid() % 1000:03d}{len(list_jobs(folder)):03d}"
    )
    log = folder / f"{job_id}.log"
    command = [*cli_command(), *args]
    with log.open("ab") as out:
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **(env or {}), "COLUMNS": "120"},
        )
    job = Job(job_id, process.pid, command, str(log), now())
    with (folder / "jobs.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(job)) + "\n")
    return job


def list_jobs(folder: Path) -> list[Job]:
    path = folder / "jobs.jsonl"
    if not path.exists():
        return []
    return [Job(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A finished child of this process stays a zombie until reaped: reap it, it is not alive.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True  # not our child: kill(0) says it exists
    return done == 0


def stop(pid: int) -> bool:
    """SIGTERM to the job's process group; False when it had already ended."""
    if not is_alive(pid):
        return False
    os.killpg(pid, signal.SIGTERM)
    return True


def tail(job: Job, lines: int = 40) -> str:
    path = Path(job.log)
    if not path.exists():
        return ""
    return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
