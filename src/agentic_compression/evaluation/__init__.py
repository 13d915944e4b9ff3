"""Measuring a candidate: accuracy (lm-eval), perplexity, latency, size, memory and energy."""
