"""llama.cpp: the compressed model exported to GGUF (``quant``) and served in-process.

Export writes ``model.gguf`` in the work folder (see :mod:`.gguf_export` for the type rules and
the optional importance matrix); the deployment loads it with llama.cpp's C API
(:mod:`.llamacpp_lib`) on ``threads`` CPU threads. Perplexity and accuracy come from llama.cpp's own
logits, latency from llama.cpp's decode calls, size from the GGUF file's bytes. After export the
deployment checks that llama.cpp tokenizes a WikiText-2 sample exactly as the Hugging Face tokenizer
does, and records the result.
"""

from __future__ import annotations

import shlex
import shutil
from collections.abc import Sequence
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


class LlamaCppDeployment(ScorerDeployment):
    """A GGUF file loaded in llama.cpp (:class:`.llamacpp_lib.LlamaCppModel`)."""


class LlamaCppRuntime(Runtime):
    name = "llamacpp"

    def deploy(
        self, model: Any, base: Any, config: RuntimeConfig, context: Any, workdir: Path
    ) -> Deployment:
        import torch

        from agentic_compression.compression.calibration import calibration_batch
        from agentic_compression.evaluation.footprint import size_stats
        from agentic_compression.evaluation.text import wikitext2_test
        from agentic_compression.runtimes.gguf_export import export_gguf, importance_matrix

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
        path = workdir / "model.gguf"
        artefact = export_gguf(
            model, base.tokenizer, path, config.quant,
            tokenizer_gguf=base.gguf_file, importance=importance, name=str(base.spec),
        )  # fmt: skip
        counts = ", ".join(f"{kind} x{n}" for kind, n in artefact.type_counts.items())
        size = size_stats(model, (artefact.size_bytes, f"GGUF file ({config.quant}: {counts})"))
        threads = config.threads or torch.get_num_threads()
        llm = LlamaCppModel(
            path, threads=threads, context=config.context, batch=config.batch,
            kv_cache=config.kv_cache,
        )  # fmt: skip
        sample = wikitext2_test()[:4000]
        agrees = llm.tokenize(sample) == list(
            base.tokenizer(sample, add_special_tokens=False).input_ids
        )
        notes = (
            *artefact.notes,
            f"{artefact.fallbacks} tensors fell back to another type (rows not a multiple of "
            "the block size)",
            "tokenizer: llama.cpp and Hugging Face agree on a WikiText-2 sample"
            if agrees
            else "tokenizer: llama.cpp and Hugging Face DISAGREE on a WikiText-2 sample: "
            "accuracy and perplexity are not comparable with the torch runtime",
        )
        info = ArtefactInfo(
            runtime=self.name,
            format=f"GGUF {config.quant}" + (" + imatrix" if config.imatrix else ""),
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
        return f"llama-server -m {gguf} --ctx-size {config.context} --batch-size {config.batch}{threads}{cache}"
