"""`lgt dashboard`: optuna-dashboard on the run storage, where lgt's notes and plots show."""

from __future__ import annotations

from lgt.errors import UserError


def serve(storage: str | None, port: int) -> None:
    """Serve optuna-dashboard on 127.0.0.1:`port` until Ctrl-C."""
    raise UserError("lgt dashboard is not built yet")
