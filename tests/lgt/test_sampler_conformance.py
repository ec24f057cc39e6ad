"""Optuna's own conformance cases for samplers, run against LGTSampler with a scripted LLM."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from optuna.samplers import BaseSampler
from optuna.testing.pytest_samplers import BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase
from scripted_llm import ScriptedLLM

from lgt.sampler import LGTSampler


class TestLGTSampler(BasicSamplerTestCase, RelativeSamplerTestCase, SingleOnlySamplerTestCase):
    @pytest.fixture
    def sampler(self) -> Callable[[], BaseSampler]:
        llm = ScriptedLLM()
        return lambda: LGTSampler(seed=0, llm_base_url="http://llm.test/v1", client_factory=llm.factory())
