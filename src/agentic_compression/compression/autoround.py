"""Calibrated low-bit rounding with Intel's AutoRound (signed gradient descent, the GPTQ/AWQ class).

AutoRound tunes, block by block on calibration text, how each weight rounds (up or down) and the
range of every group, so that the quantized block's outputs match the float block's; round-to-
nearest (RTN) only rounds. ``autoround`` runs it through the maintained ``auto-round`` library
(``pip install agentic-compression[autoround]``; it installs beside our pins, which llm-compressor
and GPTQModel do not: llm-compressor moves transformers, GPTQModel pulls a CUDA torch) and leaves a
**float model whose linear weights lie on the quantized grid**: every runtime can take it, and the
runtime's own 4-bit format then stores those values.

The grids line up by design: symmetric 4-bit groups of 32 are llama.cpp's ``Q4_0`` blocks (a signed
scale per block, integers -8..7), which the GGUF exporter writes exactly, with AutoRound's scales
(``gguf_export``: blocks already on a Q4_0 grid are packed as they are, not re-rounded). Preset
``autoround-q4_0``. torchao's int4 is asymmetric (a scale and a float zero per group): following
``autoround`` with ``int4_weight_only`` rounds the grid a second time, and on the embedded model
that lost to plain round-to-nearest (``benchmarks/results/autoround.md``), so no preset offers it;
serving AutoRound's integers in torch needs them packed as they are, which is not built yet.

Cost: a forward and backward pass per block and iteration; 50 iterations of 8 x 512 tokens took
18 minutes for the embedded 135M model on 2 CPU cores (``benchmarks/autoround.py``), so the
offline search does not try it by default (a hand-written recipe or the LLM planner can).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from agentic_compression.compression.calibration import calibration_tokens
from agentic_compression.compression.layers import linear_layers
from agentic_compression.compression.quantization import check_group_size
from agentic_compression.compression.registry import MethodConfig, register_method
from agentic_compression.errors import MethodUnavailableError


class AutoRoundConfig(MethodConfig):
    """AutoRound: weight rounding and group ranges tuned on calibration text; the model stays float."""

    method: ClassVar[str] = "autoround"
    family: ClassVar[str] = "quantization"
    summary: ClassVar[str] = (
        "AutoRound (auto-round): calibrated rounding to a 2-8 bit grid, weights kept as floats "
        "for the runtime's own format (4-bit symmetric groups of 32 = llama.cpp Q4_0, exactly)"
    )

    bits: Literal[2, 3, 4, 8] = 4
    group_size: Literal[32, 64, 128] = 32
    sym: bool = True
    iters: int = Field(50, ge=0, le=2000)
    samples: int = Field(64, ge=1, le=1024)
    seq_len: int = Field(512, ge=16, le=8192)
    batch_size: int = Field(8, ge=1, le=256)

    @model_validator(mode="after")
    def _consistent(self) -> AutoRoundConfig:
        if self.batch_size > self.samples:
            raise ValueError(f"batch_size {self.batch_size} exceeds samples {self.samples}")
        if self.bits == 8 and not self.sym:
            raise ValueError("auto-round rounds 8 bits symmetrically only; use sym true")
        return self


def _drop_added_attributes(model: Any, before: dict[str, set[str]]) -> None:
    """Remove what AutoRound left on the modules it quantized (its layer config, scale, zero point)."""
    for name, module in model.named_modules():
        for attribute in set(vars(module)) - before.get(name, set()):
            delattr(module, attribute)


@register_method(AutoRoundConfig)
def apply_autoround(model: Any, config: AutoRoundConfig, context: Any) -> str:
    import torch

    try:
        from auto_round import AutoRound
    except ImportError:
        raise MethodUnavailableError(
            "autoround needs the auto-round library: pip install 'agentic-compression[autoround]'"
        ) from None
    parameter = next(model.parameters())  # recipes put every quantization step after this one
    check_group_size(model, config.group_size, "autoround")
    tokens = calibration_tokens(model, context, config.samples, config.seq_len)
    before = {name: set(vars(module)) for name, module in model.named_modules()}
    dtype = parameter.dtype
    device = parameter.device
    with torch.enable_grad():
        rounder = AutoRound(
            model,
            context.tokenizer,
            bits=config.bits,
            group_size=config.group_size,
            sym=config.sym,
            iters=config.iters,
            nsamples=config.samples,
            seqlen=config.seq_len,
            batch_size=config.batch_size,
            dataset=list(tokens.cpu().split(1)),
            device_map="cpu" if device.type == "cpu" else device.index or 0,
            enable_torch_compile=False,
            amp=False,  # keep the model's dtype: the rounded values stay exactly on the grid
            seed=getattr(context, "seed", 0),
        )
        quantized, layer_config = rounder.quantize()
    if quantized is not model:
        raise RuntimeError("auto-round returned a new model object; cannot round in place")
    rounded = sorted(
        name for name, cfg in layer_config.items() if int(cfg.get("bits", 16)) == config.bits
    )
    _drop_added_attributes(model, before)
    model.to(device=device, dtype=dtype)
    model.requires_grad_(False)
    model.eval()
    kept = len(dict(linear_layers(model))) - len(rounded)
    return (
        f"autoround: {len(rounded)} linear layers rounded to {config.bits}-bit "
        f"{'symmetric' if config.sym else 'asymmetric'} groups of {config.group_size} "
        f"({config.iters} iterations x {config.batch_size} x {config.seq_len} tokens)"
        + (f", {kept} decoder linear layers left as they were" if kept else "")
        + f"; embeddings and output head untouched; weights stay "
        f"{str(dtype).removeprefix('torch.')} on the grid"
    )
