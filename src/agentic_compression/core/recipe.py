"""Compression recipes: an ordered list of method steps with a stable hash.

A step is a frozen, validated :class:`MethodConfig` (pydantic); each method is registered once, with
its handler, by the module of its family under :mod:`agentic_compression.compression`. Recipes are
read from JSON only through that registry (an allowlist), so a planner's output is parsed into
configs and never executed.

Example:
    >>> from agentic_compression.core.recipe import Recipe
    >>> r = Recipe.from_dict({"name": "wanda-30+int8",
    ...     "steps": [{"method": "wanda", "sparsity": 0.3}, {"method": "int8_weight_only"}]})
    >>> Recipe.from_json(r.to_json()) == r
    True
"""

from __future__ import annotations

import hashlib
import importlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from agentic_compression.core.runtime_config import RuntimeConfig, TorchSettings, parse_runtime
from agentic_compression.errors import UserInputError

#: Bumped when the meaning of a serialised recipe changes; it is part of every recipe hash.
RECIPE_FORMAT_VERSION = 1


class MethodConfig(BaseModel):
    """Base class of every method's parameters. Subclasses set the class variables below."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: ClassVar[str]
    family: ClassVar[str]
    summary: ClassVar[str]
    #: True for steps that store weights in a non-float format; nothing that edits float
    #: weights (pruning) may follow such a step, and a recipe holds at most one.
    quantizes_weights: ClassVar[bool] = False

    def params(self) -> dict[str, Any]:
        """All parameters, defaults included, as JSON-ready values."""
        return self.model_dump(mode="json")

    def describe(self) -> str:
        args = ", ".join(f"{k}={v}" for k, v in self.params().items())
        return f"{self.method}({args})"


# A handler applies its config to a model in place and returns a one-line report of what it did.
Handler = Callable[[Any, Any, Any], str]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method: its config class and the handler that applies it."""

    config_cls: type[MethodConfig]
    handler: Handler

    @property
    def name(self) -> str:
        return self.config_cls.method


_REGISTRY: dict[str, MethodSpec] = {}


def register_method(config_cls: type[MethodConfig]) -> Callable[[Handler], Handler]:
    """Register ``config_cls`` with the decorated handler ``handler(model, config, context) -> str``."""

    def decorate(handler: Handler) -> Handler:
        name = config_cls.method
        if name in _REGISTRY and _REGISTRY[name].config_cls is not config_cls:
            raise RuntimeError(f"compression method {name!r} registered twice")
        _REGISTRY[name] = MethodSpec(config_cls, handler)
        return handler

    return decorate


def registered_methods() -> dict[str, MethodSpec]:
    """All methods, built-ins loaded on first use (their modules import no heavy library)."""
    importlib.import_module("agentic_compression.compression.methods")
    return dict(sorted(_REGISTRY.items()))


def method_spec(name: str) -> MethodSpec:
    methods = registered_methods()
    if name not in methods:
        raise UserInputError(
            f"unknown compression method {name!r}; known methods: {', '.join(methods)} "
            "(see `agentic-compress methods`)"
        )
    return methods[name]


def _one_line(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"]) or "step"
        parts.append(f"{where}: {item['msg']}")
    return "; ".join(parts)


def parse_step(data: Mapping[str, Any]) -> MethodConfig:
    """Build a validated step from ``{"method": name, **params}``."""
    if not isinstance(data, Mapping) or "method" not in data:
        raise UserInputError(f"a recipe step must be an object with a 'method' key, got {data!r}")
    params = {k: v for k, v in data.items() if k != "method"}
    spec = method_spec(str(data["method"]))
    try:
        return spec.config_cls(**params)
    except ValidationError as error:
        raise UserInputError(
            f"bad parameters for method {spec.name!r}: {_one_line(error)} "
            f"(see `agentic-compress methods` for its parameters)"
        ) from None


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
        if not self.runtime.is_default:
            for step in self.steps:
                if step.quantizes_weights:
                    raise UserInputError(
                        f"step {step.method!r} stores weights in a PyTorch-only format that "
                        f"{self.runtime.name} cannot load; let the runtime quantize instead "
                        f"(runtime quant, e.g. Q4_K_M) or use runtime torch"
                    )
        quantized_by: str | None = None
        for index, step in enumerate(self.steps, start=1):
            if quantized_by is not None:
                raise UserInputError(
                    f"step {index} {step.method!r} comes after quantization step {quantized_by!r}; "
                    "put pruning and casts before the single quantization step"
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
