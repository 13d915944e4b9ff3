"""Agentic carbon-efficient compression of causal language models.

The package searches compression recipes for a model, applies each one for real, measures accuracy,
perplexity, latency, memory, energy and CO2 on the run's own hardware, and keeps the Pareto frontier.

Importing the package is cheap: heavy dependencies (torch, transformers, lm-eval, codecarbon) are
imported by the modules that need them, when they are first used.
"""

__version__ = "0.1.0"
