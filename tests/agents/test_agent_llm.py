from __future__ import annotations

from agent_fakes import SECRET, fake_llm

from agents import LLMSettings, needs_embedded_server
from agents.schemas import Guidance


def test_settings_from_arguments_and_environment() -> None:
    env = {"OPENAI_API_KEY": SECRET, "OPENAI_BASE_URL": "http://localhost:8000/v1"}
    settings = LLMSettings.from_sources(model=None, base_url=None, env=env, timeout=5.0)
    assert settings.base_url == "http://localhost:8000/v1" and settings.timeout == 5.0
    assert settings.secrets == (SECRET,)
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert LLMSettings.from_sources(base_url="http://other/v1", env=env).base_url == "http://other/v1"


def test_nothing_configured_means_embedded_server() -> None:
    assert needs_embedded_server(LLMSettings.from_sources(env={}))
    assert not needs_embedded_server(LLMSettings.from_sources(env={"OPENAI_API_KEY": SECRET}))
    assert not needs_embedded_server(LLMSettings.from_sources(base_url="http://127.0.0.1:9/v1", env={}))


def test_auto_mode_uses_json_schema_only_for_openai() -> None:
    assert LLMSettings().resolved_mode == "json_schema"
    assert LLMSettings(base_url="https://api.openai.com/v1").resolved_mode == "json_schema"
    assert LLMSettings(base_url="http://127.0.0.1:8080/v1").resolved_mode == "json_mode"
    assert (
        LLMSettings(base_url="http://127.0.0.1:8080/v1", structured_mode="json_schema").resolved_mode == "json_schema"
    )


def test_token_limit_reaches_llama_cpp_as_max_tokens() -> None:
    # llama-cpp-python ignores `max_completion_tokens`, which langchain-openai sends instead.
    server, client = fake_llm("{}")
    client.structured(Guidance).invoke("hi")
    assert server.requests[0]["max_tokens"] == LLMSettings().max_tokens
