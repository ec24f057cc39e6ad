"""The scripted LLM behind a real HTTP port, for tests that run `lgt` as a process.

A child process cannot be handed an `httpx.MockTransport`, so the same
scripted replies are served on 127.0.0.1 and the child gets
`--llm-base-url`. Only the LLM is fake; the child's client, parsing and
retries are the real ones.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
from scripted_llm import ScriptedLLM


@contextmanager
def serve(llm: ScriptedLLM) -> Iterator[str]:
    """Serve `llm` until the block ends; yields the base URL (…/v1)."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            request = httpx.Request("POST", f"http://llm.test{self.path}", content=body,
                                    headers={k: v for k, v in self.headers.items() if k.lower() == "authorization"})
            with lock:
                try:
                    response = llm.handle(request)
                except httpx.HTTPError:
                    self.close_connection = True
                    return
            self.send_response(response.status_code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(response.content)))
            self.end_headers()
            self.wfile.write(response.content)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
