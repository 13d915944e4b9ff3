"""A terminal people can read: the product's own lines on the terminal, everyone else's in a log.

While long work runs (:func:`run_log`), third-party logging (at INFO and above), Python warnings and
anything written to the process's standard error (lm-eval's progress bars, llama.cpp's C logs, a
child process's ``fatal: not a git repository``) go to the run's log file. The product's own
warnings (the ``agentic_compression`` loggers) are shown as one yellow line each on the terminal,
and written to the log too. The live progress display and the per-trial lines print to standard
output, which stays on the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from rich.console import Console

from agentic_compression.cli.options import plain

PRODUCT_LOGGER = "agentic_compression"
#: Libraries whose logging is chatty: ERROR only outside a run, INFO into a run's log file.
THIRD_PARTY_LOGGERS = (
    "torchao", "codecarbon", "torch", "transformers", "bitsandbytes", "lm_eval", "autoround",
)  # fmt: skip
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Scrubbed(logging.Filter):
    """Secrets never reach the terminal or the log (:func:`~agentic_compression.redaction.scrub`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from agentic_compression.redaction import scrub

        record.msg, record.args = scrub(record.getMessage()), None
        return True


class _TerminalHandler(logging.Handler):
    """The product's warnings as one line each on the terminal."""

    def __init__(self, console: Console) -> None:
        super().__init__(level=logging.WARNING)
        self.console = console
        self.addFilter(_Scrubbed())

    def emit(self, record: logging.LogRecord) -> None:
        message = " ".join(record.getMessage().split())
        self.console.print(f"[yellow]warning:[/] {plain(message)}", highlight=False)


def show_product_warnings(console: Console) -> None:
    """Print the product's own warnings on ``console`` (once per process)."""
    product = logging.getLogger(PRODUCT_LOGGER)
    if not any(isinstance(h, _TerminalHandler) for h in product.handlers):
        product.addHandler(_TerminalHandler(console))
        product.setLevel(logging.INFO)


@contextlib.contextmanager
def run_log(path: Path) -> Iterator[Path]:
    """Send third-party logging, warnings and standard error to ``path`` (appended) meanwhile."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("a", encoding="utf-8", buffering=1)
    file_handler = logging.StreamHandler(handle)
    file_handler.setFormatter(logging.Formatter(_FORMAT))
    file_handler.addFilter(_Scrubbed())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(file_handler)
    root.setLevel(logging.INFO)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
    logging.captureWarnings(True)
    sys.stderr.flush()
    saved_fd = os.dup(2)
    os.dup2(handle.fileno(), 2)  # C libraries and child processes write to fd 2 directly
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(handle):
            warnings.simplefilter("default")
            yield path
    finally:
        handle.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        logging.captureWarnings(False)
        root.removeHandler(file_handler)
        root.setLevel(old_level)
        for name in THIRD_PARTY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        handle.close()
