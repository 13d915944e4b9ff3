"""llama.cpp: the compressed model exported to GGUF (``quant``) and served in-process.

Export writes ``model.gguf`` in the work folder (see :mod:`.gguf_export` for the type rules and
the optional importance matrix); the deployment loads it with llama.cpp's C API
(:mod:`.llamacpp_lib`) on ``threads`` CPU threads. Perplexity and accuracy come from llama.cpp's own
logits, latency from llama.cpp's decode calls, size from the GGUF file's bytes. After export the
deployment checks that llama.cpp tokenizes a WikiText-2 sample exactly as the Hugging Face tokenizer
does, and records the result.
"""

from __future__ import annotations

import collections
import re
import shlex
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from agentic_compression.core.runtime_config import LlamaCppSettings, RuntimeConfig
from agentic_compression.runtimes.base import (
    ArtefactInfo,
    Deployment,
    Runtime,
    ScorerDeployment,
    artefact_sha256,
)
from agentic_compression.runtimes.llamacpp_lib import LlamaCppModel

#: Calibration for the importance matrix: sequences x tokens of the calibration text.
IMATRIX_SAMPLES, IMATRIX_SEQ_LEN = 16, 512
#: Calibration for the sensitivity of a ``mix_bits`` allocation (one forward pass per matrix).
MIX_SAMPLES, MIX_SEQ_LEN = 2, 256


def tensor_overrides(
    model: Any,
    base: Any,
    config: LlamaCppSettings,
    context: Any,
    importance: Mapping[str, Any] | None,
) -> tuple[dict[str, str], list[str]]:
    """GGUF tensor name -> type for a mixed-precision export: ``tensor_types`` patterns first, then
    (with ``mix_bits``) the sensitivity allocation of the decoder's other matrices; and notes on it.
    """
    from agentic_compression.compression.allocation import allocate
    from agentic_compression.compression.calibration import calibration_batch
    from agentic_compression.compression.sensitivity import measure_sensitivity
    from agentic_compression.runtimes.gguf_export import gguf_tensor_names, round_trip

    names = gguf_tensor_names(model)
    overrides = {}
    for gguf_name in names.values():
        for pattern, kind in config.tensor_types.items():
            if re.search(pattern, gguf_name):
                overrides[gguf_name] = kind
                break
    notes = (
        [f"tensor_types: {len(overrides)} tensors set by pattern"] if config.tensor_types else []
    )
    if config.mix_bits is None:
        return overrides, notes
    batch = calibration_batch(base.tokenizer, context.calibration, MIX_SAMPLES, MIX_SEQ_LEN)
    context.calibration_used.append(
        f"mix_bits sensitivity: {context.calibration.description}, {MIX_SAMPLES} x {MIX_SEQ_LEN} tokens"
    )

    def quantize(hf_name: str, weight: Any, kind: str) -> tuple[Any, int]:
        column_importance = None if importance is None else importance.get(hf_name)
        return round_trip(weight, overrides.get(names[hf_name], kind), column_importance)

    sensitivity = measure_sensitivity(model, batch, config.mix_types, quantize)
    units = {
        name: opts for name, opts in sensitivity.options.items() if names[name] not in overrides
    }
    fixed = sum(opts[0].nbytes for name, opts in sensitivity.options.items() if name not in units)
    weights = sum(
        model.get_submodule(n.removesuffix(".weight")).weight.numel() for n in sensitivity.options
    )
    budget = int(weights * config.mix_bits / 8) - fixed
    chosen = allocate(units, budget)
    overrides.update({names[name]: kind for name, kind in chosen.items()})
    used = fixed + sum(
        next(o.nbytes for o in sensitivity.options[name] if o.kind == kind)
        for name, kind in chosen.items()
    )
    counts = collections.Counter(chosen.values())
    top = ", ".join(f"{names[n]} {kl:.4f}" for n, kl in sensitivity.most_sensitive())
    notes.append(
        f"mix_bits {config.mix_bits:g}: {used * 8 / weights:.3f} bits/weight over {len(chosen)} "
        f"matrices ({', '.join(f'{k} x{n}' for k, n in sorted(counts.items()))}); most sensitive "
        f"(KL nats/token at {config.mix_types[0]}): {top}"
    )
    return overrides, notes


class LlamaCppDeployment(ScorerDeployment):
    """A GGUF file loaded in llama.cpp (:class:`.llamacpp_lib.LlamaCppModel`)."""


class LlamaCppRuntime(Runtime):
    name = "llamacpp"

    def deploy(
        self, model: Any, base: Any, config: RuntimeConfig, context: Any, workdir: Path
    ) -> Deployment:
        import torch

        from agentic_compression.compression.calibration import calibration_batch
        from agentic_compression.compression.sensitivity import importance_matrix
        from agentic_compression.evaluation.footprint import size_stats
        from agentic_compression.evaluation.text import wikitext2_test
        from agentic_compression.runtimes.gguf_export import export_gguf

        assert isinstance(config, LlamaCppSettings)
        importance = None
        if config.imatrix:
            batch = calibration_batch(
                base.tokenizer, context.calibration, IMATRIX_SAMPLES, IMATRIX_SEQ_LEN
            )
            importance = importance_matrix(model, batch)
            context.calibration_used.append(
                f"imatrix: {context.calibration.description}, "
                f"{IMATRIX_SAMPLES} x {IMATRIX_SEQ_LEN} tokens"
            )
        overrides, mix_notes = tensor_overrides(model, base, config, context, importance)
        path = workdir / "model.gguf"
        artefact = export_gguf(
            model, base.tokenizer, path, config.quant,
            tokenizer_gguf=base.gguf_file, importance=importance, overrides=overrides,
            name=str(base.spec),
        )  # fmt: skip
        counts = ", ".join(f"{kind} x{n}" for kind, n in artefact.type_counts.items())
        size = size_stats(model, (artefact.size_bytes, f"GGUF file ({config.quant}: {counts})"))
        threads = config.threads or torch.get_num_threads()
        llm = LlamaCppModel(
            path, threads=threads, context=config.context, batch=config.batch,
            kv_cache=config.kv_cache, sink_tokens=config.sink_tokens,
        )  # fmt: skip
        sample = wikitext2_test()[:4000]
        agrees = llm.tokenize(sample) == list(
            base.tokenizer(sample, add_special_tokens=False).input_ids
        )
        notes = (
            *artefact.notes,
            *mix_notes,
            f"{artefact.fallbacks} tensors fell back to another type (rows not a multiple of "
            "the block size)",
            (
                "tokenizer: llama.cpp and Hugging Face agree on a WikiText-2 sample"
                if agrees
                else "tokenizer: llama.cpp and Hugging Face DISAGREE on a WikiText-2 sample: "
                "accuracy and perplexity are not comparable with the torch runtime"
            ),
        )
        info = ArtefactInfo(
            runtime=self.name,
            format=f"GGUF {config.label.removeprefix('llamacpp-')}",
            files=(path,),
            tensor_types=artefact.type_counts,
            notes=notes,
            sha256=artefact_sha256(path),
            threads=threads,
        )
        return LlamaCppDeployment(llm, size, info)

    def write_artefact(self, deployment: Deployment, output: Path) -> list[Path]:
        output.mkdir(parents=True, exist_ok=True)
        written = []
        for source in deployment.info.files:
            target = output / source.name
            shutil.copyfile(source, target)
            written.append(target)
        return written

    def serve_command(self, files: Sequence[Path], config: RuntimeConfig) -> str:
        assert isinstance(config, LlamaCppSettings)
        gguf = shlex.quote(str(files[0])) if files else "model.gguf"
        threads = f" --threads {config.threads}" if config.threads else ""
        cache = (
            f" --cache-type-k {config.kv_cache} --cache-type-v {config.kv_cache} --flash-attn on"
            if config.kv_cache != "f16"
            else ""
        )
        shift = (
            f" --context-shift --keep {config.sink_tokens}"
            if config.sink_tokens is not None
            else ""
        )
        return (
            f"llama-server -m {gguf} --ctx-size {config.context} --batch-size {config.batch}"
            f"{threads}{cache}{shift}"
        )
