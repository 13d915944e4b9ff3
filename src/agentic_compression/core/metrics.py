"""Typed, unit-carrying measurements of one candidate, and the record that holds them.

Every figure here is measured on the run's own hardware. Where a figure is an estimate (CodeCarbon's
CPU power model when no hardware counter exists) its ``label`` says so and ``meter`` names the method.
A candidate whose compression or evaluation failed is a :class:`CandidateResult` with
``status="failed"`` and an ``error``; it carries no metrics and never reaches a Pareto front.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

EnergyLabel = Literal["measured", "estimated"]


class Record(BaseModel):
    """Base of the frozen records, with JSON round-tripping."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class AccuracyMetric(Record):
    """One lm-eval metric for one task, with its fidelity (examples used and few-shot count).

    ``data_source`` says where the examples came from (``local`` files or lm-eval's ``hub`` task)
    and ``data_fingerprint`` which ones (a hash of the local files, or ``hub:<task>``): scores with
    different fingerprints are not comparable. None on records written before they were kept.
    """

    task: str
    metric: str
    value: float
    stderr: float | None
    higher_is_better: bool
    n_examples: int
    num_fewshot: int
    filter: str = "none"
    data_source: Literal["local", "hub"] | None = None
    data_fingerprint: str | None = None
    #: True when the score was read from the evaluation cache (measured earlier, same key):
    #: the accuracy phase's energy then covers the lookup only.
    from_cache: bool = False


class LatencyStats(Record):
    """Prefill and decode latency with warm-up and repeats (milliseconds)."""

    prompt_tokens: int
    new_tokens: int
    warmup: int
    repeats: int
    prefill_ms_median: float
    prefill_ms_p90: float
    decode_ms_median: float
    decode_ms_p90: float
    decode_tokens_per_s: float
    threads: int
    device: str
    #: Noise guard (None on records written before it): this process's CPU time / wall time over
    #: the timed repeats (below ``DISTURBED_CPU_SHARE`` another process took the cores), the
    #: spread of the repeats' decode medians (max / min), the 1-minute load average at the end,
    #: how many times the measurement was taken again, and whether it stayed disturbed.
    cpu_share: float | None = None
    repeat_spread: float | None = None
    load_average: float | None = None
    remeasured: int = 0
    disturbed: bool = False


class SizeStats(Record):
    """Bytes actually serialised, parameter counts and achieved sparsity."""

    serialized_bytes: int
    serialization: str
    parameter_count: int
    zero_parameter_count: int
    #: Fraction of zeros among the weights of the linear layers of the decoder blocks.
    linear_weight_sparsity: float
    #: Fraction of zeros among all float parameters (embeddings and norms included).
    overall_sparsity: float


class MemoryStats(Record):
    """Peak memory while the candidate was evaluated."""

    peak_bytes: int
    #: "process_rss" (sampled resident set size on CPU) or "cuda_max_allocated".
    kind: str
    baseline_bytes: int


class PerplexityResult(Record):
    dataset: str
    value: float
    n_tokens: int
    seq_len: int
    windows: int


class EnergyReading(Record):
    """Energy and CO2 of one phase of work, with the meter and intensity that produced them."""

    phase: str
    duration_s: float
    energy_kwh: float
    co2_kg: float
    cpu_energy_kwh: float
    gpu_energy_kwh: float
    ram_energy_kwh: float
    label: EnergyLabel
    meter: str
    country_iso_code: str
    carbon_intensity_g_per_kwh: float
    intensity_source: str


class InferenceEnergy(Record):
    """Energy per generated token, measured over the decode-latency loop."""

    generated_tokens: int
    energy_kwh_per_token: float
    co2_kg_per_1k_tokens: float
    label: EnergyLabel
    meter: str


class DeploymentRecord(Record):
    """Where the candidate was measured: the runtime, its settings and the artefact it served."""

    runtime: str
    #: "in-memory PyTorch model", "GGUF Q4_K_M" ...
    format: str
    settings: dict[str, Any]
    #: ggml type -> tensor count, read back from the artefact (llama.cpp).
    tensor_types: dict[str, int] = {}
    artefact_sha256: str | None = None
    threads: int | None = None
    notes: tuple[str, ...] = ()


class CandidateMetrics(Record):
    size: SizeStats
    deployment: DeploymentRecord | None = None
    latency: LatencyStats | None = None
    memory: MemoryStats | None = None
    perplexity: PerplexityResult | None = None
    accuracy: tuple[AccuracyMetric, ...] = ()
    inference_energy: InferenceEnergy | None = None


class StepReport(Record):
    method: str
    params: dict[str, Any]
    summary: str
    seconds: float


class Provenance(Record):
    package_version: str
    packages: dict[str, str]
    python: str
    platform: str
    cpu: str
    cpu_count: int
    gpu: str | None
    #: CPU features that decide the kernels (AVX2, AVX-512, AMX ...); empty on records before.
    cpu_flags: tuple[str, ...] = ()
    torch_threads: int
    git_revision: str | None
    seed: int
    model: str
    model_hash: str
    recipe_hash: str
    calibration: str | None
    meter: str | None
    intensity_source: str | None
    started_at: str
    finished_at: str
    #: The machine that measured it, and the worker there (a Ray actor, or the local process).
    host: str | None = None
    worker: str | None = None


class CandidateResult(Record):
    """Everything known about one evaluated candidate: what it is, what was measured, how."""

    candidate_id: str
    model: str
    recipe: dict[str, Any]
    recipe_hash: str
    status: Literal["ok", "failed"]
    error: str | None = None
    failed_phase: str | None = None
    steps: tuple[StepReport, ...] = ()
    metrics: CandidateMetrics | None = None
    energy: tuple[EnergyReading, ...] = ()
    provenance: Provenance
