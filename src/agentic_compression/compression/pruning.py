"""Pruning: unstructured magnitude, Wanda (activation-aware) and N:M semi-structured (2:4, 4:8).

Weights are zeroed in place in the linear layers of the decoder blocks (the head and embeddings are
kept). Pruned weights stay stored dense: sparsity alone does not shrink the file or speed up dense
kernels, and the measurements show exactly that.

Wanda (Sun et al., 2023) scores each weight by ``|W_ij| * ||X_j||_2`` where ``X_j`` is the j-th input
feature over calibration tokens, and compares weights within each output row. As in the reference
implementation, blocks are processed in order and each block's statistics are taken on the outputs of
the already-pruned blocks before it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from agentic_compression.compression.calibration import calibration_tokens
from agentic_compression.compression.layers import decoder_blocks, linear_layers
from agentic_compression.compression.registry import MethodConfig, SearchChoice, register_method

#: Calibration samples are pushed through the model in chunks of this many sequences.
_CHUNK = 8


class _Pruning(MethodConfig):
    family: ClassVar[str] = "pruning"


class _Calibrated(_Pruning):
    calibration_samples: int = Field(32, ge=1, le=1024)
    calibration_seq_len: int = Field(256, ge=16, le=8192)


class Magnitude(_Pruning):
    """Zero the smallest-magnitude weights of each linear layer (no calibration, no recovery)."""

    method: ClassVar[str] = "magnitude"
    summary: ClassVar[str] = "unstructured magnitude pruning, per layer"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("magnitude", "magnitude", sweep="sparsity"),
    )

    sparsity: float = Field(0.5, gt=0.0, lt=1.0)


class Wanda(_Calibrated):
    """Wanda: prune by |weight| x input-activation norm, per output row."""

    method: ClassVar[str] = "wanda"
    summary: ClassVar[str] = "Wanda activation-aware unstructured pruning (calibrated)"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("wanda", "wanda", sweep="sparsity"),
    )

    sparsity: float = Field(0.5, gt=0.0, lt=1.0)


class SemiStructured(_Calibrated):
    """N:M sparsity: in every group of M consecutive input weights keep the N best."""

    method: ClassVar[str] = "nm"
    summary: ClassVar[str] = "N:M semi-structured pruning (2:4, 4:8), Wanda or magnitude scores"
    search_choices: ClassVar[tuple[SearchChoice, ...]] = (
        SearchChoice("nm-2:4", "2of4", {"n": 2, "m": 4, "criterion": "wanda"}, sparsity=0.5),
        SearchChoice(
            "nm-4:8", "4of8", {"n": 4, "m": 8, "criterion": "wanda"}, sparsity=0.5, searched=False
        ),
    )

    n: int = Field(2, ge=1)
    m: int = Field(4, ge=2)
    criterion: Literal["wanda", "magnitude"] = "wanda"

    @model_validator(mode="after")
    def _n_below_m(self) -> SemiStructured:
        if self.n >= self.m:
            raise ValueError(f"n must be smaller than m (got {self.n}:{self.m})")
        return self


# ----------------------------------------------------------------------------- masks


def _mask_lowest(scores: Any, fraction: float, per_row: bool) -> Any:
    """A 0/1 mask that removes the ``fraction`` lowest scores (per row or per whole matrix)."""
    import torch

    mask = torch.ones_like(scores, dtype=torch.bool)
    if per_row:
        k = int(scores.shape[1] * fraction)
        if k:
            mask.scatter_(1, torch.topk(scores, k, dim=1, largest=False).indices, False)
        return mask
    k = int(scores.numel() * fraction)
    if k:
        flat = mask.view(-1)
        flat[torch.topk(scores.reshape(-1), k, largest=False).indices] = False
    return mask


def _mask_n_of_m(scores: Any, n: int, m: int) -> Any:
    import torch

    rows, cols = scores.shape
    if cols % m:
        raise ValueError(f"input width {cols} is not a multiple of m={m}")
    groups = scores.reshape(rows, cols // m, m)
    mask = torch.ones_like(groups, dtype=torch.bool)
    mask.scatter_(2, torch.topk(groups, m - n, dim=2, largest=False).indices, False)
    return mask.reshape(rows, cols)


def _zero_fraction(layers: list[Any]) -> tuple[int, int]:
    zeros = sum(int((layer.weight == 0).sum()) for layer in layers)
    return zeros, sum(layer.weight.numel() for layer in layers)


def _report(name: str, layers: list[Any], extra: str = "") -> str:
    zeros, total = _zero_fraction(layers)
    return f"{name}: {len(layers)} layers, achieved sparsity {zeros / total:.4f}{extra}"


# ----------------------------------------------------------------------------- magnitude


@register_method(Magnitude)
def apply_magnitude(model: Any, config: Magnitude, context: Any) -> str:
    layers = [layer for _, layer in linear_layers(decoder_blocks(model))]
    for layer in layers:
        layer.weight.mul_(_mask_lowest(layer.weight.abs(), config.sparsity, per_row=False))
    return _report(f"magnitude {config.sparsity:.0%}", layers)


# ----------------------------------------------------------------------------- Wanda


class _StopForward(Exception):
    """Raised by a hook to stop the forward pass once the first block's inputs are captured."""


def _replace_hidden(args: tuple[Any, ...], kwargs: dict[str, Any], hidden: Any) -> Any:
    if args:
        return (hidden, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": hidden}


def _block_inputs(model: Any, blocks: Any, tokens: Any) -> list[tuple[tuple[Any, ...], dict]]:
    """The (args, kwargs) the first block receives for each chunk of calibration tokens."""
    captured: list[tuple[tuple[Any, ...], dict]] = []

    def grab(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        captured.append((args, kwargs))
        raise _StopForward

    handle = blocks[0].register_forward_pre_hook(grab, with_kwargs=True)
    try:
        for chunk in tokens.split(_CHUNK):
            with contextlib.suppress(_StopForward):
                model(chunk, use_cache=False)
    finally:
        handle.remove()
    return captured


def _run_block(block: Any, inputs: list[tuple[tuple[Any, ...], dict]]) -> list[Any]:
    outputs = []
    for args, kwargs in inputs:
        out = block(*args, **kwargs)
        outputs.append(out[0] if isinstance(out, tuple) else out)
    return outputs


def _activation_aware_prune(
    model: Any, config: _Calibrated, context: Any, make_mask: Callable[[Any], Any]
) -> list[Any]:
    """Prune block by block with Wanda scores; ``make_mask(scores) -> keep mask``."""
    import torch

    device = next(model.parameters()).device
    tokens = calibration_tokens(
        model, context, config.calibration_samples, config.calibration_seq_len
    )
    blocks = decoder_blocks(model)
    inputs = _block_inputs(model, blocks, tokens)
    pruned: list[Any] = []
    for block in blocks:
        layers = dict(linear_layers(block))
        sums = {
            name: torch.zeros(layer.in_features, device=device) for name, layer in layers.items()
        }

        def accumulate(name: str, sums: dict[str, Any] = sums) -> Callable[..., None]:
            def hook(module: Any, args: tuple[Any, ...]) -> None:
                x = args[0].detach().reshape(-1, module.in_features).float()
                sums[name] += (x * x).sum(dim=0)

            return hook

        handles = [layer.register_forward_pre_hook(accumulate(n)) for n, layer in layers.items()]
        try:
            _run_block(block, inputs)
        finally:
            for handle in handles:
                handle.remove()
        for name, layer in layers.items():
            scores = layer.weight.abs().float() * sums[name].sqrt().unsqueeze(0)
            layer.weight.mul_(make_mask(scores).to(layer.weight.dtype))
            pruned.append(layer)
        outputs = _run_block(block, inputs)  # inputs of the next block, after pruning this one
        inputs = [_replace_hidden(a, k, out) for (a, k), out in zip(inputs, outputs, strict=True)]
    return pruned


@register_method(Wanda)
def apply_wanda(model: Any, config: Wanda, context: Any) -> str:
    layers = _activation_aware_prune(
        model, config, context, lambda s: _mask_lowest(s, config.sparsity, per_row=True)
    )
    return _report(
        f"wanda {config.sparsity:.0%}", layers, f"; calibration {context.calibration_used[-1]}"
    )


@register_method(SemiStructured)
def apply_n_of_m(model: Any, config: SemiStructured, context: Any) -> str:
    label = f"{config.n}:{config.m} ({config.criterion})"
    if config.criterion == "magnitude":
        layers = [layer for _, layer in linear_layers(decoder_blocks(model))]
        for layer in layers:
            layer.weight.mul_(_mask_n_of_m(layer.weight.abs(), config.n, config.m))
        return _report(label, layers)
    layers = _activation_aware_prune(
        model, config, context, lambda s: _mask_n_of_m(s, config.n, config.m)
    )
    return _report(label, layers, f"; calibration {context.calibration_used[-1]}")
