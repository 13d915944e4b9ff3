"""A random-weight model with the shape of a public checkpoint, saved as a local folder, for benchmarks
whose numbers depend on shapes only (artefact bytes, decode time), never on what the weights know.

Run: ``.venv/bin/python benchmarks/shaped_model.py SHAPE FOLDER`` (SHAPE: one of ``SHAPES``). The
folder holds the model (float32 safetensors, seed 0) and the embedded SmolLM2 tokenizer (all shapes
below use its 49152-token vocabulary), so ``--model FOLDER`` loads it offline. Quality numbers
(perplexity, accuracy) of such a model mean nothing and are not reported from it.
"""

from __future__ import annotations

import sys
from typing import Any

#: Shapes of public Llama-architecture checkpoints (their config.json values, weights not used).
SHAPES: dict[str, dict[str, Any]] = {
    "smollm2-360m": {
        "hidden_size": 960, "intermediate_size": 2560, "num_hidden_layers": 32,
        "num_attention_heads": 15, "num_key_value_heads": 5, "vocab_size": 49152,
        "max_position_embeddings": 8192, "rope_theta": 100000.0, "rms_norm_eps": 1e-5,
        "tie_word_embeddings": True,
    },
}  # fmt: skip


def main() -> None:
    if len(sys.argv) != 3 or sys.argv[1] not in SHAPES:
        raise SystemExit(f"usage: shaped_model.py SHAPE FOLDER, SHAPE one of {sorted(SHAPES)}")
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from agentic_compression.models import load_model

    torch.manual_seed(0)
    tokenizer = load_model("smollm2-135m").tokenizer
    config = LlamaConfig(
        **SHAPES[sys.argv[1]],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config).eval()
    model.save_pretrained(sys.argv[2])
    tokenizer.save_pretrained(sys.argv[2])
    print(
        f"{sys.argv[1]}: {sum(p.numel() for p in model.parameters()):,} parameters -> {sys.argv[2]}"
    )


if __name__ == "__main__":
    main()
