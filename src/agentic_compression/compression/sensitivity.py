"""How much each weight matrix's quantization hurts the model, measured on calibration text.

For mixed precision (:mod:`.allocation`), every decoder linear layer gets a damage per candidate
format:

1. one forward pass of the unquantized model over the calibration batch records the reference
   next-token distribution and, per layer, the mean square of every input column (the *importance
   matrix* of ``llama-imatrix``);
2. for each layer, its weight alone is replaced by the lowest format's round trip (quantized, then
   dequantized: the values the runtime will compute with) and the KL divergence of the model's
   next-token distribution from the reference is measured: that layer's *sensitivity*;
3. the other formats' damage is the sensitivity scaled by their importance-weighted rounding error
   relative to the lowest format's, ``sum_j imp_j * ||dW[:, j]||^2`` (the expected squared error of
   the layer's output under the calibration inputs), so one forward pass per layer suffices.

Damage is additive across layers to first order (the assumption every such allocator makes).

Cost: one forward pass per layer, shortened to the blocks from the perturbed one on (the outputs of
the blocks before it are replayed from the reference pass, which they cannot differ from).
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agentic_compression.compression.allocation import Option
from agentic_compression.compression.layers import decoder_blocks
from agentic_compression.errors import MethodUnavailableError

#: ``round_trip(name, weight, kind)`` -> (the weight as the runtime computes with it, stored bytes),
#: or None when ``kind`` cannot store that weight (an int4 group size that does not divide it).
RoundTrip = Callable[[str, Any, str], "tuple[Any, int] | None"]


@dataclass(frozen=True)
class Sensitivity:
    """Per layer: the KL divergence (nats/token) when it alone is at the lowest format, and its
    options (format, bytes, damage) for :func:`.allocation.allocate`."""

    kl: Mapping[str, float]
    options: Mapping[str, Sequence[Option]]

    def most_sensitive(self, count: int = 3) -> list[tuple[str, float]]:
        return sorted(self.kl.items(), key=lambda item: -item[1])[:count]


def importance_matrix(model: Any, batch: Any) -> dict[str, Any]:
    """Mean square of every input column of each linear layer of the decoder, over ``batch``.

    Keys are the Hugging Face weight names (``model.layers.0.mlp.down_proj.weight``); values are
    float32 numpy vectors of the layer's ``in_features``.
    """
    _, importance, _ = _reference(model, batch, keep_logits=False)
    return {name: vector.cpu().numpy() for name, vector in importance.items()}


def _reference(
    model: Any, batch: Any, keep_logits: bool
) -> tuple[list[Any], dict[str, Any], list[list[Any]]]:
    """Per row: the log-probabilities (``keep_logits``); per layer: the importance vector; per
    block: its output for each row (what :func:`_replayed` returns instead of recomputing)."""
    import torch

    blocks = list(decoder_blocks(model)) if keep_logits else []
    outputs: list[list[Any]] = [[] for _ in blocks]
    sums: dict[str, Any] = {}
    counts: dict[str, int] = collections.defaultdict(int)
    hooks = []

    def hook_for(name: str) -> Any:
        def hook(module: Any, inputs: tuple[Any, ...], output: Any) -> None:
            x = inputs[0].detach().float().reshape(-1, inputs[0].shape[-1])
            squares = (x * x).sum(dim=0)
            sums[name] = squares if name not in sums else sums[name] + squares
            counts[name] += x.shape[0]

        return hook

    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and ".layers." in f".{name}":
            hooks.append(module.register_forward_hook(hook_for(f"{name}.weight")))
    for index, block in enumerate(blocks):
        hooks.append(block.register_forward_hook(lambda m, a, out, i=index: outputs[i].append(out)))
    log_probs = []
    try:
        with torch.inference_mode():
            for row in batch:
                logits = model(row.unsqueeze(0), use_cache=False).logits
                if keep_logits:
                    log_probs.append(torch.log_softmax(logits.float(), dim=-1))
    finally:
        for handle in hooks:
            handle.remove()
    return log_probs, {name: sums[name] / counts[name] for name in sums}, outputs


@contextlib.contextmanager
def _replayed(blocks: Sequence[Any], outputs: Sequence[Any]) -> Iterator[None]:
    """Blocks that return their recorded output instead of computing it."""
    for block, output in zip(blocks, outputs, strict=True):
        block.forward = lambda *args, _out=output, **kwargs: _out
    try:
        yield
    finally:
        for block in blocks:
            del block.forward


def _kl(model: Any, batch: Any, reference: list[Any], skip: int, outputs: list[list[Any]]) -> float:
    """Mean KL(reference || model) per token, the first ``skip`` blocks replayed from ``outputs``."""
    import torch

    blocks = list(decoder_blocks(model))[:skip]
    total = 0.0
    with torch.inference_mode():
        for index, (row, ref) in enumerate(zip(batch, reference, strict=True)):
            with _replayed(blocks, [outputs[b][index] for b in range(skip)]):
                logits = model(row.unsqueeze(0), use_cache=False).logits
            log_q = torch.log_softmax(logits.float(), -1)
            total += float((ref.exp() * (ref - log_q)).sum(-1).mean())
    return total / len(reference)


def measure_sensitivity(
    model: Any, batch: Any, kinds: Sequence[str], round_trip: RoundTrip
) -> Sensitivity:
    """Damage of each of ``kinds`` (lowest first) for every decoder linear layer of ``model``.

    ``batch`` is a (samples, tokens) tensor of calibration text; a kind named ``"float"`` keeps the
    weight as it is (no damage, its current bytes).
    """
    reference, importance, outputs = _reference(model, batch, keep_logits=True)
    block_of = _block_index(model)
    kl: dict[str, float] = {}
    options: dict[str, list[Option]] = {}
    for name in importance:
        module = model.get_submodule(name.removesuffix(".weight"))
        original = module.weight.data
        errors: dict[str, tuple[float, int]] = {}
        lowest_weight = None
        for kind in kinds:
            if kind == "float":
                errors[kind] = (0.0, original.numel() * original.element_size())
                continue
            trip = round_trip(name, original, kind)
            if trip is None:
                continue
            approx, nbytes = trip
            delta = (approx.float() - original.float()) ** 2
            errors[kind] = (float((delta * importance[name]).sum()), nbytes)
            if lowest_weight is None:
                lowest_weight = approx.to(original.dtype)
        if lowest_weight is None:
            kl[name] = 0.0
        else:
            module.weight.data = lowest_weight
            try:
                kl[name] = max(_kl(model, batch, reference, block_of(name), outputs), 0.0)
            finally:
                module.weight.data = original
        if not errors:
            raise MethodUnavailableError(
                f"none of the formats {list(kinds)} can store {name} "
                f"({tuple(original.shape)}): add one that can (int8, float, another group size)"
            )
        lowest_error = next(iter(errors.values()))[0]
        options[name] = [
            Option(kind, nbytes, kl[name] * error / lowest_error if lowest_error > 0 else 0.0)
            for kind, (error, nbytes) in errors.items()
        ]
    return Sensitivity(kl, options)


def _block_index(model: Any) -> Callable[[str], int]:
    """Weight name -> index of the decoder block that holds it."""
    index_by_id = {id(block): i for i, block in enumerate(decoder_blocks(model))}
    prefixes = {
        f"{name}.": index_by_id[id(module)]
        for name, module in model.named_modules()
        if id(module) in index_by_id
    }

    def block_of(weight_name: str) -> int:
        for prefix, index in prefixes.items():
            if weight_name.startswith(prefix):
                return index
        return 0

    return block_of
