"""How loud the libraries under lgt are, set once by the `lgt` command.

Library code never touches global logging or warning filters at import
time: a program that imports lgt keeps its own settings. The CLI entry
point calls `configure()`.
"""

from __future__ import annotations

import logging
import warnings

import optuna


def configure() -> None:
    # Optuna logs every trial and in-memory study at INFO; our own progress output says what matters.
    optuna.logging.set_verbosity(logging.WARNING)
    # Our workers drive heartbeats themselves around ask/tell (lgt.worker.heartbeat).
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used", category=UserWarning)
