"""The embedded model's server process: llama-cpp-python's OpenAI-compatible app, plus timings.

`agents.embedded.EmbeddedServer` runs this module in a child process
instead of `llama_cpp.server`. It takes the same arguments and serves the
same app, with two changes: the prompt cache's states leave out a buffer
no agent uses (`_lean_state`), and every chat completion's JSON carries a
``timings`` object in the shape llama.cpp's own server uses (``prompt_n``,
``prompt_ms``, ``predicted_n``, ``predicted_ms``), so a transcript can say
how long reading the prompt took (after any reuse of a cached prefix)
against writing the reply. `agents.llm.Timings` reads it on the client.

It is its own process: patching `llama_cpp.Llama` here touches nothing in
the app that started it.
"""

from __future__ import annotations

import ctypes
import json
import signal
import sys
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# The server runs one completion at a time (llama-cpp-python holds a lock around the model), so the
# timings of "the last completion" are the timings of the response being sent.
LAST: dict[str, float] = {}


def _timed(create: Callable[..., Any]) -> Callable[..., Any]:
    """`Llama.create_chat_completion`, recording llama.cpp's prompt-evaluation time and the rest of the call."""
    import llama_cpp

    def create_chat_completion(self: Any, *args: Any, **kwargs: Any) -> Any:
        llama_cpp.llama_perf_context_reset(self._ctx.ctx)
        started = time.perf_counter()
        result = create(self, *args, **kwargs)
        wall_ms = (time.perf_counter() - started) * 1000
        perf = llama_cpp.llama_perf_context(self._ctx.ctx)
        prompt_ms = float(perf.t_p_eval_ms)
        LAST.clear()
        LAST.update(prompt_n=int(perf.n_p_eval), prompt_ms=round(prompt_ms, 1), predicted_n=int(perf.n_eval),
                    predicted_ms=round(max(0.0, wall_ms - prompt_ms), 1))
        return result

    return create_chat_completion


def _lean_state(llama_cls: Any, state_cls: Any) -> None:
    """Save and restore prompt-cache states without the score buffer, and with one copy instead of three.

    llama-cpp-python's `save_state` copies the whole score buffer (batch x vocabulary
    floats, 100 MB for SmolLM2 at batch 512) into every cached state and back on every
    load; the scores only serve `logprobs`, which no agent asks for (the request
    would fail here: `logits_all` is off). Measured with the RAM cache on, a repeated
    Advisor prompt took 0.9 s where it took 0.03 s without the cache; this is most of
    that, paid on each agent's turn.
    """
    import llama_cpp
    import numpy as np

    def save_state(self: Any) -> Any:
        size = llama_cpp.llama_state_get_size(self._ctx.ctx)
        buffer = (ctypes.c_uint8 * int(size))()
        n_bytes = int(llama_cpp.llama_state_get_data(self._ctx.ctx, buffer, size))
        if n_bytes > int(size):
            raise RuntimeError("Failed to copy llama state data")
        return state_cls(scores=np.empty((0, 0), dtype=np.single), input_ids=self.input_ids.copy(),
                         n_tokens=self.n_tokens, llama_state=ctypes.string_at(buffer, n_bytes),
                         llama_state_size=n_bytes, seed=self._seed)

    def load_state(self: Any, state: Any) -> None:
        self.input_ids = state.input_ids.copy()
        self.n_tokens = state.n_tokens
        self._requires_eval = True
        self._seed = state.seed
        buffer = (ctypes.c_uint8 * state.llama_state_size).from_buffer_copy(state.llama_state)
        if llama_cpp.llama_state_set_data(self._ctx.ctx, buffer, state.llama_state_size) != state.llama_state_size:
            raise RuntimeError("Failed to set llama state data")

    llama_cls.save_state, llama_cls.load_state = save_state, load_state


def score_options(llama: Any, messages: list[dict[str, str]], questions: list[tuple[str, list[str]]]) -> dict[str, Any]:
    """For each question (the start of the assistant's answer, its options), each option's log-probability.

    This is how a model too small to write picks from a menu. The prompt
    is read once (a prefix already in the context, or in the RAM prompt
    cache, is reused, as for a chat completion); each question's answer is
    read on from there, the log-probabilities of every option's first token
    come from the logits at the answer position, and an option of several
    tokens is read on one token at a time. Then everything past the prompt
    is rolled back, so questions and options never see each other. Only the
    last position's logits are ever needed, so the model needs no
    `logits_all` (n_ctx x vocabulary floats of memory).
    """
    import llama_cpp
    import numpy as np

    started = time.perf_counter()
    prompt = _chat_tokens(llama, messages, "")
    if getattr(llama, "cache", None):
        try:
            cached = llama.cache[prompt]
            if llama_cpp.Llama.longest_token_prefix(cached.input_ids.tolist(), prompt) > \
                    llama_cpp.Llama.longest_token_prefix(llama._input_ids.tolist(), prompt):
                llama.load_state(cached)
        except KeyError:
            pass
    read = _read_to(llama, prompt)
    prompt_ms = (time.perf_counter() - started) * 1000
    if getattr(llama, "cache", None) and read >= CACHE_AFTER:  # a follow-up of a few tokens is not worth a state
        llama.cache[prompt] = llama.save_state()
    base, extra, answers = llama.n_tokens, 0, []
    for answer, options in questions:
        extra += _read_to(llama, _chat_tokens(llama, messages, answer))
        first, at = _log_softmax(llama, np), llama.n_tokens
        scored, lengths = [], []
        for option in options:
            ids = llama.tokenize(option.encode("utf-8"), add_bos=False, special=False)
            lengths.append(len(ids))
            total = float(first[ids[0]]) if ids else 0.0
            for i in range(1, len(ids)):  # read on, one token at a time, from where the answer stands
                llama.eval([ids[i - 1]])
                total += float(_log_softmax(llama, np)[ids[i]])
                extra += 1
            _roll_back(llama, at)
            scored.append(total)
        answers.append({"logprobs": scored, "tokens": lengths})
    _roll_back(llama, base)
    wall_ms = (time.perf_counter() - started) * 1000
    return {"answers": answers, "prompt_tokens": len(prompt),
            "timings": {"prompt_n": read, "prompt_ms": round(prompt_ms, 1), "predicted_n": extra,
                        "predicted_ms": round(max(0.0, wall_ms - prompt_ms), 1)}}


CACHE_AFTER = 32  # prompt tokens read, at least, before a scoring request's state goes into the prompt cache


def _read_to(llama: Any, tokens: list[int]) -> int:
    """Make the context hold `tokens`, reading only what it does not share with them (at least the last token)."""
    import llama_cpp

    keep = min(llama_cpp.Llama.longest_token_prefix(llama._input_ids.tolist(), tokens), len(tokens) - 1)
    llama._ctx.kv_cache_seq_rm(-1, keep, -1)
    llama.n_tokens = keep
    llama.eval(tokens[keep:])
    return int(len(tokens) - keep)


def _roll_back(llama: Any, length: int) -> None:
    """Forget every position from `length` on."""
    if llama.n_tokens > length:
        llama._ctx.kv_cache_seq_rm(-1, length, -1)
        llama.n_tokens = length
        llama._requires_eval = True  # the logits left are not the last kept position's


def _chat_tokens(llama: Any, messages: list[dict[str, str]], answer: str) -> list[int]:
    """The tokens a chat completion would read for `messages`, then the start of the assistant's `answer`."""
    from llama_cpp import llama_chat_format

    formatter = _FORMATTERS.get(id(llama))
    if formatter is None:
        model = llama._model
        eos = model.token_get_text(llama.token_eos()) if llama.token_eos() != -1 else ""
        bos = model.token_get_text(llama.token_bos()) if llama.token_bos() != -1 else ""
        formatter = llama_chat_format.Jinja2ChatFormatter(template=llama.metadata["tokenizer.chat_template"],
                                                          eos_token=eos, bos_token=bos)
        _FORMATTERS[id(llama)] = formatter
    formatted = formatter(messages=list(messages))  # type: ignore[arg-type]  # plain dicts of the OpenAI shape
    return list(llama.tokenize((formatted.prompt + answer).encode("utf-8"), add_bos=not formatted.added_special,
                               special=True))


_FORMATTERS: dict[int, Any] = {}


def _log_softmax(llama: Any, np: Any) -> Any:
    """The log-probabilities of the next token, from the logits of the last position evaluated."""
    # The last position's row, whether or not the model keeps logits for every position (`logits_all`).
    logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(-1), shape=(llama.n_vocab(),)).astype(np.float64)
    logits -= logits.max()
    return logits - np.log(np.exp(logits).sum())


def add_score_route(app: Any) -> None:
    """``POST /v1/lgt/score``: {messages, questions: [{answer, options}]} -> {answers: [{logprobs, tokens}], ...}.

    See `score_options`; ``tokens`` is each option's length in tokens, and
    the reply also carries ``prompt_tokens`` and ``timings``.

    It takes the model through llama-cpp-python's own dependency, so it
    waits its turn behind any chat completion like every other request.
    """
    from fastapi import Body, Depends
    from llama_cpp.server.app import get_llama_proxy
    from starlette.concurrency import run_in_threadpool

    async def score(body: dict[str, Any] = Body(...), proxy: Any = Depends(get_llama_proxy)) -> dict[str, Any]:  # noqa: B008
        messages, questions = body.get("messages"), body.get("questions")
        if not isinstance(messages, list) or not isinstance(questions, list) or not questions or not all(
                isinstance(q, dict) and isinstance(q.get("answer", ""), str) and isinstance(q.get("options"), list)
                and q["options"] and all(isinstance(o, str) and o for o in q["options"]) for q in questions):
            from fastapi import HTTPException

            raise HTTPException(status_code=400, detail="needs messages (a list) and questions (a list of "
                                                        "{answer: text, options: non-empty texts})")
        asked = [(str(q.get("answer", "")), list(q["options"])) for q in questions]
        return await run_in_threadpool(score_options, proxy(body.get("model")), messages, asked)

    app.post("/v1/lgt/score")(score)


def with_timings(app: ASGIApp) -> ASGIApp:
    """Add `LAST` as ``timings`` to the JSON body of each chat-completion response.

    FastAPI serialises the typed response and drops unknown keys, so the body
    is rewritten after serialisation, here, and its Content-Length fixed.
    """

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope.get("path", "")).endswith("/chat/completions"):
            await app(scope, receive, send)
            return
        start: Message | None = None
        body = bytearray()

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                await send(message)
                return
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            assert start is not None
            payload = bytes(body)
            headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
            if start["status"] == 200 and LAST:
                try:
                    data = json.loads(payload)
                    data["timings"] = dict(LAST)
                    payload = json.dumps(data).encode()
                except (ValueError, TypeError):
                    pass  # a streamed or non-JSON body goes out as it came
            headers.append((b"content-length", str(len(payload)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": payload})

        await app(scope, receive, capture)

    return middleware


def _die_with_parent() -> None:
    """Ask the kernel for SIGTERM when the app that started us dies without stopping us (kill -9)."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def main(argv: list[str] | None = None) -> None:
    _die_with_parent()
    import argparse

    import llama_cpp
    import uvicorn
    from llama_cpp.server.app import create_app
    from llama_cpp.server.cli import add_args_from_model, parse_model_from_args
    from llama_cpp.server.settings import ModelSettings, ServerSettings, Settings

    parser = argparse.ArgumentParser(prog="lgt-llm-server")
    add_args_from_model(parser, Settings)
    args = parser.parse_args(argv)
    server: ServerSettings = parse_model_from_args(ServerSettings, args)  # type: ignore[assignment]  # untyped helper
    model: ModelSettings = parse_model_from_args(ModelSettings, args)  # type: ignore[assignment]
    llama_cpp.Llama.create_chat_completion = _timed(llama_cpp.Llama.create_chat_completion)  # type: ignore[method-assign]
    _lean_state(llama_cpp.Llama, llama_cpp.llama.LlamaState)
    app = create_app(server_settings=server, model_settings=[model])
    add_score_route(app)
    uvicorn.run(with_timings(app), host=server.host, port=server.port, log_level="warning")


if __name__ == "__main__":
    main()
