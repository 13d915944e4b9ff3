"""What a candidate occupies: bytes serialised, parameters, achieved sparsity, peak memory.

Size is the byte count of ``torch.save(model.state_dict())`` written to disk: what the compressed model
really takes to store in this format (torchao and bitsandbytes tensors serialise in packed form),
not a formula from the bit width. Pruned weights stored dense take the same bytes as unpruned ones.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from agentic_compression.compression.layers import decoder_blocks, linear_layers
from agentic_compression.core.metrics import MemoryStats, SizeStats

SERIALIZATION = "torch.save(state_dict) on disk"


def serialized_bytes(model: Any) -> int:
    import torch

    with tempfile.TemporaryDirectory(prefix="agentic-size-") as folder:
        path = os.path.join(folder, "state_dict.pt")
        with open(path, "wb") as handle:
            torch.save(model.state_dict(), handle)
            handle.flush()
            os.fsync(handle.fileno())  # written back now, not during a later timed measurement
        return os.path.getsize(path)


def _activation_dtype(weight: Any) -> Any:
    import torch

    dtype = getattr(weight, "dtype", torch.float32)
    return dtype if dtype in (torch.float32, torch.bfloat16, torch.float16) else torch.float32


def dense_weight(layer: Any) -> Any:
    """The layer's weight as a float tensor, dequantising torchao and bitsandbytes formats."""
    weight = layer.weight
    quant_state = getattr(weight, "quant_state", None)
    if quant_state is not None:  # bitsandbytes 4-bit
        import bitsandbytes.functional as bnb_functional

        return bnb_functional.dequantize_4bit(weight.data, quant_state)
    if type(weight).__name__ == "Int8Params":  # bitsandbytes int8: zeros stay zeros in int8
        return weight.data
    if hasattr(weight, "dequantize") and type(weight).__name__ != "Parameter":
        try:
            return weight.dequantize()
        except NotImplementedError:  # torchao's CPU int4 (Int4OpaqueTensor) has no dequantize
            import torch

            eye = torch.eye(layer.in_features, dtype=torch.float32, device=weight.device)
            with torch.no_grad():
                return torch.nn.functional.linear(eye.to(_activation_dtype(weight)), weight).t()
    data = getattr(weight, "data", weight)
    return data.dequantize() if hasattr(data, "dequantize") and data.is_quantized else data


def size_stats(model: Any, serialized: tuple[int, str] | None = None) -> SizeStats:
    """Serialised bytes, logical parameter count and achieved sparsity (read off the stored weights).

    ``serialized`` gives the bytes and format of an artefact already written by a runtime (a GGUF
    file); without it the model's state dict is written to disk and counted.
    """
    linear_zeros = linear_total = 0
    linear_ids = set()
    for _, layer in linear_layers(decoder_blocks(model)):
        weight = dense_weight(layer)
        linear_zeros += int((weight == 0).sum())
        linear_total += weight.numel()
        linear_ids.add(id(layer.weight))
    other_zeros = other_total = 0
    seen = set(linear_ids)
    for parameter in model.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        if (
            type(parameter).__name__ in ("Params4bit", "Int8Params")
            or not parameter.is_floating_point()
        ):
            continue  # quantized weights of layers outside the blocks (none by default)
        other_zeros += int((parameter == 0).sum())
        other_total += parameter.numel()
    total = linear_total + other_total
    size, serialization = serialized or (serialized_bytes(model), SERIALIZATION)
    return SizeStats(
        serialized_bytes=size,
        serialization=serialization,
        parameter_count=total,
        zero_parameter_count=linear_zeros + other_zeros,
        linear_weight_sparsity=linear_zeros / linear_total if linear_total else 0.0,
        overall_sparsity=(linear_zeros + other_zeros) / total if total else 0.0,
    )


@dataclass
class _PeakBox:
    stats: MemoryStats | None = None


@contextlib.contextmanager
def peak_memory(device: str, interval_s: float = 0.005) -> Iterator[_PeakBox]:
    """Peak memory during the block: CUDA max allocated on GPU, sampled process RSS on CPU."""
    box = _PeakBox()
    if device.startswith("cuda"):
        import torch

        baseline = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        yield box
        box.stats = MemoryStats(
            peak_bytes=int(torch.cuda.max_memory_allocated()),
            kind="cuda_max_allocated",
            baseline_bytes=int(baseline),
        )
        return
    import psutil

    process = psutil.Process()
    baseline = process.memory_info().rss
    peak = [baseline]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], process.memory_info().rss)
            stop.wait(interval_s)

    sampler = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    sampler.start()
    try:
        yield box
    finally:
        stop.set()
        sampler.join()
        peak[0] = max(peak[0], process.memory_info().rss)
        box.stats = MemoryStats(peak_bytes=peak[0], kind="process_rss", baseline_bytes=baseline)
