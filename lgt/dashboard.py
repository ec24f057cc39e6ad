"""`lgt dashboard`: optuna-dashboard on the run storage, where lgt's notes and plots show.

optuna-dashboard is the live view of every run: its study page shows the
note lgt keeps there (an LGT run's change log so far), each trial page the
trial's note (proposal, reasons, evidence, verdict) and the artifacts (the
run's plots). This serves it on 127.0.0.1 with the artifact store lgt
writes those plots to, which plain `optuna-dashboard URL` would not know.
"""

from __future__ import annotations

import errno
import sys
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna_dashboard import wsgi

from lgt.errors import UserError
from lgt.reporting.artifacts import artifact_store
from lgt.reporting.store import open_existing
from lgt.settings import default_storage_url
from lgt.studies import redact_url

HOST = "127.0.0.1"


class _QuietHandler(WSGIRequestHandler):
    """Keeps the terminal to the one address line: no log line per request."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve(storage: str | None, port: int) -> None:
    """Serve optuna-dashboard on 127.0.0.1:`port` until Ctrl-C.

    A storage that does not open, or a port that is taken, is a UserError
    (one line, exit code 2) before anything is printed.
    """
    url = storage or default_storage_url()
    opened = open_existing(url)  # a mistyped SQLite path is refused, not created empty
    app = wsgi(opened, artifact_store=artifact_store(url))
    server = _bind(port, app)
    print(f"dashboard: http://{HOST}:{port}/dashboard (Ctrl-C to stop)", flush=True)
    print(f"storage: {redact_url(url)}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _bind(port: int, app: Any) -> WSGIServer:
    if not 0 < port < 65536:
        raise UserError(f"--port must be between 1 and 65535, got {port}")
    try:
        return make_server(HOST, port, app, handler_class=_QuietHandler)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {HOST} is in use; pass another with --port") from None
        raise UserError(f"cannot listen on {HOST}:{port}: {exc.strerror or exc}") from None
