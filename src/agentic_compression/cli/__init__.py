"""The `agentic-compress` command line."""
