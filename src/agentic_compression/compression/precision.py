"""Precision casts: the whole model to float32, bfloat16 or float16."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from agentic_compression.core.recipe import MethodConfig, register_method


class Cast(MethodConfig):
    """Cast every floating-point parameter and buffer to ``dtype``."""

    method: ClassVar[str] = "cast"
    family: ClassVar[str] = "precision"
    summary: ClassVar[str] = "cast all weights to float32, bfloat16 or float16"

    dtype: Literal["float32", "bfloat16", "float16"] = "bfloat16"


@register_method(Cast)
def apply_cast(model: Any, config: Cast, context: Any) -> str:
    import torch

    model.to(getattr(torch, config.dtype))
    dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    return f"parameters now {', '.join(dtypes)}"
