"""Model loading: Hugging Face ids, local folders, GGUF files and the embedded offline default."""

from agentic_compression.models.loading import EMBEDDED_ALIASES, LoadedModel, load_model

__all__ = ["EMBEDDED_ALIASES", "LoadedModel", "load_model"]
