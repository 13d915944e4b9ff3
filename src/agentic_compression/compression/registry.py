"""The method registry: every compression method's config, handler and search facets, in one place.

A method is a frozen, validated :class:`MethodConfig` (pydantic) registered once, with its handler,
by the module of its family (``pruning`` and ``structured`` pruning, ``recovery`` training,
``quantization``, ``precision``). Each config also declares
what the rest of the product needs to know about it, so nothing restates it elsewhere:

- ``runtimes``: which runtimes can serve a model after this step (a torchao or bitsandbytes
  format only PyTorch; pruning and casts leave a float model every runtime exports).
- ``search_choices``: the named settings a planner may pick (:class:`SearchChoice`): the search
  space (``planning.space``), the presets (``compression.presets``) and the bit widths the planners
  compare are derived from them.

Recipes are read from JSON only through this registry (an allowlist), so a planner's output is parsed
into configs and never executed.

Example:
    >>> from agentic_compression.compression.registry import search_choices
    >>> [(c.name, c.label, c.bits) for c in search_choices("precision")][2:5]
    [('fp16', 'fp16', 16), ('int8_weight_only', 'int8', 8), ('int8_dynamic', 'int8-dynamic', 8)]
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from agentic_compression.core.runtime_config import RUNTIME_CONFIGS
from agentic_compression.errors import UserInputError

#: Every runtime: each exports a float model to its own format.
ALL_RUNTIMES = tuple(RUNTIME_CONFIGS)

#: Where a search choice needs special hardware: a CUDA GPU, or one with FP8 kernels (8.9+).
Hardware = Literal["any", "cuda", "cuda-fp8"]


@dataclass(frozen=True)
class SearchChoice:
    """One named setting of a method that planners may pick and users may type as a preset.

    ``slot`` is ``"pruning"`` or ``"precision"`` (a candidate has at most one of each); ``label`` is
    the short form used in recipe names (``wanda-30+int8``); ``bits`` the stored bits per weight
    (precision choices); ``sweep`` names the parameter the space sweeps over its sparsity levels
    (unstructured and structured pruning) up to ``sweep_max``, and ``sparsity`` is the fixed
    sparsity of a choice that has one (2:4);
    ``searched`` False keeps a choice out of the default search (a preset only).
    """

    name: str
    label: str
    params: Mapping[str, Any] = field(default_factory=dict)
    bits: float | None = None
    sweep: str | None = None
    sparsity: float = 0.0
    hardware: Hardware = "any"
    searched: bool = True
    #: The preset's name when it differs from ``label`` (kept for names users already type).
    preset: str | None = None
    #: The highest swept value a search tries (the space's levels above it are skipped).
    sweep_max: float = 1.0
    #: The swept values that are presets too (``wanda-30``, ``wanda-50``).
    preset_values: tuple[float, ...] = (0.3, 0.5)

    @property
    def slot(self) -> str:
        return "pruning" if self.bits is None else "precision"


class MethodConfig(BaseModel):
    """Base class of every method's parameters. Subclasses set the class variables below."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: ClassVar[str]
    family: ClassVar[str]
    summary: ClassVar[str]
    #: True for steps that store weights in a non-float format; nothing that edits float
    #: weights (pruning) may follow such a step, and a recipe holds at most one.
    quantizes_weights: ClassVar[bool] = False
    #: The energy-metered phase the step runs in: "training" steps are training in the ledger.
    phase: ClassVar[str] = "compression"
    #: The runtimes that can serve a model after this step.
    runtimes: ClassVar[tuple[str, ...]] = ALL_RUNTIMES
    #: What planners may pick from this method (none: only hand-written recipes use it).
    search_choices: ClassVar[tuple[SearchChoice, ...]] = ()

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


# Insertion order is the families' import order, then each module's order: the search space's order.
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


def _load_builtins() -> dict[str, MethodSpec]:
    # The family modules import only pydantic at module level (torch, torchao and bitsandbytes
    # inside the handlers), so listing methods stays cheap.
    importlib.import_module("agentic_compression.compression.methods")
    return _REGISTRY


def registered_methods() -> dict[str, MethodSpec]:
    """All methods by name (sorted), built-ins loaded on first use."""
    return dict(sorted(_load_builtins().items()))


def method_spec(name: str) -> MethodSpec:
    methods = registered_methods()
    if name not in methods:
        raise UserInputError(
            f"unknown compression method {name!r}; known methods: {', '.join(methods)} "
            "(see `agentic-compress methods`)"
        )
    return methods[name]


def search_choices(slot: str | None = None) -> list[SearchChoice]:
    """Every method's search choices in registration order (``slot``: only pruning or precision)."""
    return [
        choice
        for spec in _load_builtins().values()
        for choice in spec.config_cls.search_choices
        if slot is None or choice.slot == slot
    ]


def choice_step(choice: SearchChoice, **overrides: Any) -> dict[str, Any]:
    """The recipe step of ``choice`` (``overrides``: the swept value, e.g. ``sparsity=0.3``)."""
    for spec in _load_builtins().values():
        if choice in spec.config_cls.search_choices:
            return {"method": spec.name, **choice.params, **overrides}
    raise ValueError(f"search choice {choice.name!r} is not registered")


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
