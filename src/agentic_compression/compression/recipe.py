"""Compression recipes: an ordered list of method steps, the runtime that serves them, a stable hash.

A step is a frozen, validated :class:`MethodConfig` from the method registry
(:mod:`agentic_compression.compression.registry`, an allowlist), so a planner's output is parsed into
configs and never executed.

Example:
    >>> from agentic_compression.compression.recipe import Recipe
    >>> r = Recipe.from_dict({"name": "wanda-30+int8",
    ...     "steps": [{"method": "wanda", "sparsity": 0.3}, {"method": "int8_weight_only"}]})
    >>> Recipe.from_json(r.to_json()) == r
    True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from agentic_compression.compression.registry import MethodConfig, parse_step
from agentic_compression.core.runtime_config import RuntimeConfig, TorchSettings, parse_runtime
from agentic_compression.errors import UserInputError

#: Bumped when the meaning of a serialised recipe changes; it is part of every recipe hash.
RECIPE_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Recipe:
    """An ordered, validated sequence of compression steps and the runtime that serves the result.

    The empty recipe on the default runtime (PyTorch eager) is the base model. A runtime other than
    torch exports the compressed float model to its own format (llama.cpp: GGUF in ``quant``), so
    steps that store weights in a torch-only format (torchao, bitsandbytes) cannot precede it.
    """

    steps: tuple[MethodConfig, ...] = ()
    name: str | None = None
    runtime: RuntimeConfig = field(default_factory=TorchSettings)

    def __post_init__(self) -> None:
        for step in self.steps:
            if self.runtime.name not in step.runtimes:
                raise UserInputError(
                    f"step {step.method!r} stores weights in a format that {self.runtime.name} "
                    f"cannot load (only {', '.join(step.runtimes)}); let the runtime quantize "
                    "instead (runtime quant, e.g. Q4_K_M) or use runtime torch"
                )
        quantized_by: str | None = None
        for index, step in enumerate(self.steps, start=1):
            if quantized_by is not None:
                raise UserInputError(
                    f"step {index} {step.method!r} comes after quantization step {quantized_by!r}; "
                    "put pruning, recovery training and casts before the single quantization step"
                )
            if step.quantizes_weights:
                quantized_by = step.method

    @property
    def label(self) -> str:
        """The name if it has one, else a readable form of the steps."""
        if self.name:
            return self.name
        steps = "+".join(step.method for step in self.steps)
        if self.runtime.is_default:
            return steps or "base"
        return f"{steps}+{self.runtime.label}" if steps else self.runtime.label

    def segments(self) -> list[tuple[str, Recipe]]:
        """Consecutive steps grouped by the phase they run in (``compression``, ``training``), each
        group as a recipe of its own, in order; empty for the empty recipe."""
        groups: list[tuple[str, list[MethodConfig]]] = []
        for step in self.steps:
            if groups and groups[-1][0] == step.phase:
                groups[-1][1].append(step)
            else:
                groups.append((step.phase, [step]))
        return [(phase, Recipe(tuple(steps))) for phase, steps in groups]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form; ``runtime`` appears only when it is not the default (torch)."""
        data: dict[str, Any] = {
            "name": self.name,
            "steps": [{"method": s.method, **s.params()} for s in self.steps],
        }
        if not self.runtime.is_default:
            data["runtime"] = self.runtime.params()
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def hash(self) -> str:
        """A stable 16-hex-digit hash of the steps and runtime (defaults included; not the name).

        A recipe on the default runtime hashes as it did before runtimes existed.
        """
        data = self.to_dict()
        payload = {"format": RECIPE_FORMAT_VERSION, "steps": data["steps"]}
        if "runtime" in data:
            payload["runtime"] = data["runtime"]
        canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @classmethod
    def from_steps(
        cls,
        steps: Sequence[Mapping[str, Any]],
        name: str | None = None,
        runtime: Mapping[str, Any] | RuntimeConfig | None = None,
    ) -> Recipe:
        config = runtime if isinstance(runtime, RuntimeConfig) else parse_runtime(runtime)
        return cls(tuple(parse_step(step) for step in steps), name, config)

    def with_runtime(self, runtime: RuntimeConfig, name: str | None = None) -> Recipe:
        """The same steps served by ``runtime``."""
        return Recipe(self.steps, name, runtime)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Recipe:
        if not isinstance(data, Mapping) or not isinstance(data.get("steps"), list):
            raise UserInputError(
                'a recipe must be a JSON object like {"name": ..., "steps": [{"method": ...}, ...]}'
            )
        unknown = set(data) - {"name", "steps", "runtime"}
        if unknown:
            raise UserInputError(
                f"unknown recipe keys {sorted(unknown)}; allowed: name, steps, runtime"
            )
        name = data.get("name")
        return cls.from_steps(
            data["steps"], None if name is None else str(name), data.get("runtime")
        )

    @classmethod
    def from_json(cls, text: str) -> Recipe:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserInputError(f"recipe is not valid JSON: {error}") from None
        return cls.from_dict(data)
