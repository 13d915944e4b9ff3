"""The search space of the offline planners: recipes <-> a few named parameters.

A point of the space is a :class:`SpacePoint`: a pruning choice (``none``, ``magnitude``, ``wanda``,
``nm-2:4``, and the structured ``mlp-channels`` and ``drop-layers``), a sparsity (the fraction removed)
for the swept ones, within each choice's own range, and one precision/quantization choice, which
also says where the candidate is served: PyTorch eager (``fp32``, ``bf16``, ``int8_weight_only``,
``int8_dynamic``, ``int4_weight_only``, ``nf4``, ``fp4``, ``bnb_8bit``, and ``float8_dynamic`` on an
FP8 GPU; ``mixed-6bit``, per-layer int4/int8 by sensitivity, when asked for)
or llama.cpp with the weights exported in a GGUF type (``gguf-f16``, ``gguf-q8_0``, ``gguf-q4_k_m``
...), ONNX Runtime GenAI (``onnx-int8``, ``onnx-int4``) or, on a GPU, vLLM (``vllm-w4a16`` ...). So the planners search the joint (recipe x runtime) space with no change of their own. :meth:`SearchSpace.to_recipe` turns a point into a
:class:`Recipe` (pruning first, then the single precision step); :meth:`SearchSpace.from_recipe` is the
inverse, ``None`` for a recipe outside the space. Sparsity is discrete (``sparsity_levels``), so the
space is a finite grid a planner can enumerate when sampling keeps hitting trials already run.

"fp32" casts explicitly (``cast float32``) so that a 32-bit run is 32-bit whatever the model was
loaded in; a recipe without a precision step is read back as fp32 as well.

The older codebase spoke of ``(bits, sparsity)``; :func:`from_bits_sparsity` maps that vocabulary
here (32 -> fp32, 16 -> bf16, 8 -> int8 weight-only, 4 -> NF4; sparsity -> Wanda, 0 -> no pruning).

Example:
    >>> space = SearchSpace()
    >>> recipe = space.to_recipe(SpacePoint("wanda", 0.3, "nf4"))
    >>> recipe.name
    'wanda-30+nf4'
    >>> space.from_recipe(recipe)
    SpacePoint(pruning='wanda', sparsity=0.3, quantization='nf4')
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentic_compression.compression.recipe import Recipe
from agentic_compression.compression.registry import SearchChoice, choice_step, search_choices
from agentic_compression.core.runtime_config import (
    GGUF_QUANT_BITS,
    LlamaCppSettings,
    OnnxRuntimeSettings,
    RuntimeConfig,
    VllmSettings,
)

# Pruning and in-PyTorch precision choices come from the method registry (each method's
# ``search_choices``); the runtime choices below from the runtimes' settings.
_PRUNING_CHOICES: Mapping[str, SearchChoice] = {c.name: c for c in search_choices("pruning")}
_PRECISION_CHOICES: Mapping[str, SearchChoice] = {c.name: c for c in search_choices("precision")}

#: Pruning choices; "nm-2:4" is 2:4 semi-structured (its sparsity is fixed at 0.5).
PRUNING_METHODS = ("none", *(c.name for c in _PRUNING_CHOICES.values() if c.searched))
#: Pruning choices whose sparsity the space sweeps over ``sparsity_levels``.
UNSTRUCTURED = tuple(name for name, c in _PRUNING_CHOICES.items() if c.sweep)

#: Precision/quantization choice -> the single step it adds (fp32 casts explicitly).
QUANTIZATION_STEPS: Mapping[str, dict[str, Any]] = {
    name: choice_step(choice) for name, choice in _PRECISION_CHOICES.items()
}
#: The in-PyTorch choices every machine runs (no GPU needed), in registry order.
CPU_QUANTIZATIONS = tuple(
    name for name, c in _PRECISION_CHOICES.items() if c.searched and c.hardware == "any"
)
#: Precision choices served by llama.cpp: "gguf-q4_k_m" -> GGUF type Q4_K_M (default settings).
GGUF_CHOICES: Mapping[str, str] = {f"gguf-{quant.lower()}": quant for quant in GGUF_QUANT_BITS}
#: Precision choices served by ONNX Runtime GenAI on the CPU (MatMulNBits weight-only, block 32).
ONNX_CHOICES: Mapping[str, OnnxRuntimeSettings] = {
    "onnx-int8": OnnxRuntimeSettings(precision="int8"),
    "onnx-int4": OnnxRuntimeSettings(precision="int4"),
}
#: Precision choices served by vLLM on a CUDA GPU: the checkpoint as it is (bf16) or quantized by
#: llm-compressor into compressed-tensors.
VLLM_CHOICES: Mapping[str, VllmSettings] = {
    "vllm-bf16": VllmSettings(dtype="bfloat16"),
    "vllm-w8a8": VllmSettings(scheme="W8A8"),
    "vllm-w4a16": VllmSettings(scheme="W4A16"),
    "vllm-fp8": VllmSettings(scheme="FP8"),
}
#: The GGUF types a default search tries: llama.cpp's common picks from 16 down to 4 bits.
DEFAULT_GGUF_QUANTIZATIONS = (
    "gguf-f16",
    "gguf-q8_0",
    "gguf-q6_k",
    "gguf-q5_k_m",
    "gguf-q4_k_m",
    "gguf-q4_0",
    "gguf-iq4_xs",
)
#: 0.1 steps up to 0.7: beyond that, unrecovered pruning leaves a 135M-7B model unusable.
DEFAULT_SPARSITY_LEVELS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
#: The older codebase's bit widths and what they mean here.
BITS_TO_QUANTIZATION: Mapping[int, str] = {32: "fp32", 16: "bf16", 8: "int8_weight_only", 4: "nf4"}
#: Known-good starting points, most informative first: the uncompressed baseline (the reference
#: for accuracy drops), llama.cpp's near-lossless Q8_0 and its usual 4-bit pick Q4_K_M (where the
#: space has llama.cpp), bf16 (lossless halving, on every backend), the two quantizations that keep
#: quality while quartering the weights or more, and the paper's pruning+int8 combination.
#: ``benchmarks/search_efficiency.py`` measures what the seeds and the TPE search each contribute.
SEED_POINTS: tuple[SpacePoint, ...]  # filled below, after SpacePoint is defined


@dataclass(frozen=True, order=True)
class SpacePoint:
    """One point of the space. ``sparsity`` is 0 unless ``pruning`` is unstructured (nm-2:4 is 0.5)."""

    pruning: str
    sparsity: float
    quantization: str

    @property
    def label(self) -> str:
        """A readable recipe name: ``fp32``, ``nf4``, ``wanda-30+int8``, ``2of4+bf16``."""
        precision = _PRECISION_CHOICES.get(self.quantization)
        quant = precision.label if precision is not None else self.quantization
        if self.pruning == "none":
            return quant
        pruning = _PRUNING_CHOICES[self.pruning]
        prune = f"{pruning.label}-{round(self.sparsity * 100)}" if pruning.sweep else pruning.label
        return f"{prune}+{quant}"

    @property
    def effective_sparsity(self) -> float:
        if self.pruning == "none":
            return 0.0
        pruning = _PRUNING_CHOICES[self.pruning]
        return self.sparsity if pruning.sweep else pruning.sparsity


SEED_POINTS = (
    SpacePoint("none", 0.0, "fp32"),
    SpacePoint("none", 0.0, "gguf-q8_0"),
    SpacePoint("none", 0.0, "gguf-q4_k_m"),
    SpacePoint("none", 0.0, "bf16"),
    SpacePoint("none", 0.0, "int8_weight_only"),
    SpacePoint("none", 0.0, "nf4"),
    SpacePoint("wanda", 0.3, "int8_weight_only"),
)


def _round_sparsity(value: float) -> float:
    # Two decimals: 0.1 + 0.2 must be the 0.3 of the grid, not 0.30000000000000004.
    return round(float(value), 2)


def from_bits_sparsity(bits: int, sparsity: float) -> SpacePoint:
    """The older codebase's ``(bits, sparsity)`` as a point: sparsity -> Wanda (0: no pruning).

    >>> from_bits_sparsity(8, 0.3).label
    'wanda-30+int8'
    """
    if bits not in BITS_TO_QUANTIZATION:
        raise ValueError(f"bits must be one of {sorted(BITS_TO_QUANTIZATION)}, got {bits}")
    sparsity = _round_sparsity(sparsity)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    pruning = "wanda" if sparsity > 0 else "none"
    return SpacePoint(pruning, sparsity, BITS_TO_QUANTIZATION[bits])


def to_bits_sparsity(point: SpacePoint) -> tuple[int, float]:
    """The ``(bits, sparsity)`` a point has in the older vocabulary (int8/4-bit variants included).

    >>> to_bits_sparsity(SpacePoint("nm-2:4", 0.0, "nf4"))
    (4, 0.5)
    """
    return int(weight_bits(point.quantization)), point.effective_sparsity


@dataclass(frozen=True)
class SearchSpace:
    """Which pruning methods, sparsity levels and quantizations a planner may combine.

    Example:
        >>> space = SearchSpace(pruning=("none", "wanda"), sparsity_levels=(0.3, 0.5),
        ...                     quantizations=("fp32", "nf4"))
        >>> [p.label for p in space.grid()]
        ['fp32', 'nf4', 'wanda-30+fp32', 'wanda-30+nf4', 'wanda-50+fp32', 'wanda-50+nf4']
    """

    pruning: tuple[str, ...] = PRUNING_METHODS
    sparsity_levels: tuple[float, ...] = DEFAULT_SPARSITY_LEVELS
    quantizations: tuple[str, ...] = CPU_QUANTIZATIONS
    #: Precision choices this hardware runs in software (bf16 on a CPU without AVX512-BF16 or
    #: AMX: 3-4x slower to evaluate, benchmarks/results/bf16_cpu_capability.md). Still searchable,
    #: never seeded, and named to the LLM planner.
    emulated: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown_pruning = set(self.pruning) - {"none", *_PRUNING_CHOICES}
        choices = (*QUANTIZATION_STEPS, *GGUF_CHOICES, *ONNX_CHOICES, *VLLM_CHOICES)
        unknown_quant = set(self.quantizations) - set(choices)
        if unknown_pruning or unknown_quant or not self.pruning or not self.quantizations:
            raise ValueError(
                f"bad search space: pruning {self.pruning} (from {PRUNING_METHODS}), "
                f"quantizations {self.quantizations} "
                f"(from {choices})"
            )
        levels = tuple(sorted({_round_sparsity(s) for s in self.sparsity_levels}))
        if any(not 0.0 < s < 1.0 for s in levels):
            raise ValueError(f"sparsity levels must be in (0, 1), got {levels}")
        object.__setattr__(self, "sparsity_levels", levels)
        for pruning in set(self.pruning) & set(UNSTRUCTURED):
            if not self.levels_for(pruning):
                raise ValueError(
                    f"pruning {pruning!r} needs a sparsity level up to "
                    f"{_PRUNING_CHOICES[pruning].sweep_max}, got {levels}"
                )

    def levels_for(self, pruning: str) -> tuple[float, ...]:
        """The sparsity levels a pruning choice is searched at ((0.0,) for a fixed one)."""
        if pruning not in UNSTRUCTURED:
            return (0.0,)
        top = _PRUNING_CHOICES[pruning].sweep_max
        return tuple(level for level in self.sparsity_levels if level <= top)

    @classmethod
    def for_this_machine(cls, runtimes: Sequence[str] | None = None) -> SearchSpace:
        """The default space over ``runtimes`` (None: every runtime installed here), with the
        choices that need a CUDA GPU or FP8 kernels (compute capability 8.9+:
        ``float8_dynamic``, vLLM's FP8) only where this machine has them."""
        import torch

        from agentic_compression.runtimes import installed_runtimes

        runtimes = installed_runtimes() if runtimes is None else tuple(runtimes)
        cuda = torch.cuda.is_available()
        fp8 = cuda and torch.cuda.get_device_capability() >= (8, 9)
        hardware = {"any", *(["cuda"] if cuda else []), *(["cuda-fp8"] if fp8 else [])}
        quantizations: tuple[str, ...] = ()
        emulated: tuple[str, ...] = ()
        if "torch" in runtimes:
            quantizations += tuple(
                name
                for name, choice in _PRECISION_CHOICES.items()
                if choice.searched and choice.hardware in hardware
            )
            if not cuda and not has_native_bf16():
                emulated = ("bf16",)
        if "llamacpp" in runtimes:
            quantizations += DEFAULT_GGUF_QUANTIZATIONS
        if "onnxruntime" in runtimes:
            quantizations += tuple(ONNX_CHOICES)
        if "vllm" in runtimes:
            quantizations += tuple(c for c in VLLM_CHOICES if fp8 or c != "vllm-fp8")
        return cls(quantizations=quantizations, emulated=emulated)

    # ------------------------------------------------------------------ points and recipes

    def contains(self, point: SpacePoint) -> bool:
        if point.pruning not in self.pruning or point.quantization not in self.quantizations:
            return False
        return point.sparsity in self.levels_for(point.pruning)

    def grid(self) -> list[SpacePoint]:
        """Every point, in a fixed order (pruning, then sparsity, then quantization)."""
        points = []
        for pruning in self.pruning:
            for sparsity, quant in itertools.product(self.levels_for(pruning), self.quantizations):
                points.append(SpacePoint(pruning, sparsity, quant))
        return points

    def to_recipe(self, point: SpacePoint) -> Recipe:
        """The recipe of ``point``: its pruning step (if any), then its precision step."""
        if not self.contains(point):
            raise ValueError(f"{point} is not in this search space")
        steps: list[dict[str, Any]] = []
        if point.pruning != "none":
            pruning = _PRUNING_CHOICES[point.pruning]
            sweep = {pruning.sweep: point.sparsity} if pruning.sweep else {}
            steps.append(choice_step(pruning, **sweep))
        runtime = _runtime_of_choice(point.quantization)
        if runtime is not None:
            return Recipe.from_steps(steps, name=point.label, runtime=runtime)
        steps.append(dict(QUANTIZATION_STEPS[point.quantization]))
        return Recipe.from_steps(steps, name=point.label)

    def from_recipe(self, recipe: Recipe) -> SpacePoint | None:
        """The point ``recipe`` is, or None if it is outside this space (other steps or values).

        A recipe is in the space when it equals the point's :meth:`to_recipe` (names aside), or
        that recipe without its final ``cast float32`` (a pruned or empty fp32 recipe).
        """
        steps = list(recipe.steps)
        pruning, sparsity = "none", 0.0
        if steps and steps[0].family == "pruning":
            first = steps.pop(0)
            found = _pruning_choice_of(first.method, first.params())
            if found is None:
                return None
            pruning = found.name
            if found.sweep:
                sparsity = _round_sparsity(first.params()[found.sweep])
        if not recipe.runtime.is_default:
            quant: str | None = _choice_of_runtime(recipe.runtime)
            if steps or quant is None:
                return None
        elif len(steps) > 1:
            return None
        else:
            quant = "fp32" if not steps else _quantization_of(Recipe((steps[0],)).hash)
        if quant is None:
            return None
        point = SpacePoint(pruning, sparsity, quant)
        if not self.contains(point):
            return None
        canonical = self.to_recipe(point)
        implicit_fp32 = Recipe(canonical.steps[:-1]) if quant == "fp32" else canonical
        return point if recipe.hash in (canonical.hash, implicit_fp32.hash) else None

    def key(self, recipe: Recipe) -> str:
        """What identifies a recipe for de-duplication: its point label if in the space, else its hash."""
        point = self.from_recipe(recipe)
        return f"point:{point.label}" if point is not None else f"hash:{recipe.hash}"

    def seeds(self) -> list[SpacePoint]:
        """The known-good seed points that lie in this space and run natively here, most
        informative first."""
        return [p for p in SEED_POINTS if self.contains(p) and p.quantization not in self.emulated]

    def nearest(
        self, target: SpacePoint, exclude: Sequence[SpacePoint] | set[SpacePoint]
    ) -> SpacePoint | None:
        """The grid point closest to ``target`` that is not in ``exclude`` (ties: grid order)."""
        excluded = set(exclude)
        candidates = [p for p in self.grid() if p not in excluded]
        if not candidates:
            return None
        return min(candidates, key=lambda p: distance(p, target))


def has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 in hardware (AVX512-BF16 or AMX-BF16); None known: no."""
    from agentic_compression.core.provenance import cpu_flags

    return bool({"avx512_bf16", "amx_bf16"} & set(cpu_flags()))


def _runtime_of_choice(choice: str) -> RuntimeConfig | None:
    """The runtime a precision choice is served by; None for the torch choices."""
    if choice in GGUF_CHOICES:
        return LlamaCppSettings(quant=GGUF_CHOICES[choice])
    return ONNX_CHOICES.get(choice) or VLLM_CHOICES.get(choice)


def _choice_of_runtime(runtime: RuntimeConfig) -> str | None:
    """The precision choice of a non-default runtime (its settings may still differ)."""
    if isinstance(runtime, LlamaCppSettings):
        return f"gguf-{runtime.quant.lower()}"
    choices = {**ONNX_CHOICES, **VLLM_CHOICES}
    return next((choice for choice, config in choices.items() if config == runtime), None)


def _pruning_choice_of(method: str, params: Mapping[str, Any]) -> SearchChoice | None:
    """The pruning choice a step is an instance of (its fixed parameters equal), if any."""
    for choice in _PRUNING_CHOICES.values():
        if choice_step(choice)["method"] != method:
            continue
        fixed = {key: params.get(key) for key in choice.params}
        if fixed == dict(choice.params):
            return choice
    return None


def weight_bits(choice: str) -> float:
    """Bits per stored weight of a precision choice ("nf4" -> 4, "gguf-q8_0" -> 8.5)."""
    if choice in _PRECISION_CHOICES:
        return float(_PRECISION_CHOICES[choice].bits or 0.0)
    runtime = _runtime_of_choice(choice)
    if runtime is None or runtime.weight_bits is None:
        raise ValueError(f"unknown precision choice {choice!r}")
    return runtime.weight_bits


def _quantization_of(step_hash: str) -> str | None:
    """The quantization choice whose single step has this recipe hash, if any."""
    for name, step in QUANTIZATION_STEPS.items():
        if Recipe.from_steps([step]).hash == step_hash:
            return name
    return None


def distance(a: SpacePoint, b: SpacePoint) -> float:
    """A small, explicit metric: 1 per differing choice, plus the sparsity gap (0.1 = 0.25).

    Quantizations of the same bit width are closer (0.5) than of different widths (1).
    """
    if a.quantization == b.quantization:
        quant = 0.0
    elif int(weight_bits(a.quantization)) == int(weight_bits(b.quantization)):
        quant = 0.5
    else:
        quant = 1.0
    prune = 0.0 if a.pruning == b.pruning else 1.0
    # Rounded so that equal distances tie exactly (then grid order decides).
    return round(quant + prune + 2.5 * abs(a.effective_sparsity - b.effective_sparsity), 9)
