"""In-run adaptation on a small real target, with only the LLM scripted.

The run: digits with SGD at learning rate 0.3 and momentum 0.99, which on
seed 0 barely learns in epoch 1 and gets worse in epoch 2; at 0.01 it
learns. The scripted Evaluator and Advisor call that out and lower the rate.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from recording import Recorder
from scripted_llm import ScriptedLLM

from agents import Advisor, Evaluator, LLMSettings, Transcript
from graphs.adaptation import AdaptiveTrial, ab_epoch, run_adaptive_trial, vet_changes
from lgt.reporting.plots import plot_schedule
from lgt.reporting.schedule import describe_entry, schedule_lines
from tuning_targets.registry import make_target
from tuning_targets.trainer import TrainingRun, TrainSettings

CPU = torch.device("cpu")
HOT: dict[str, Any] = {"optimizer": "sgd", "learning_rate": 0.3, "momentum": 0.99, "batch_size": 32, "conv_channels": 8,
       "conv_blocks": 1, "hidden_units": 32}


def verdict(healthy: bool, knob: str = "learning_rate") -> str:
    gradient = [] if healthy else [{"knob": knob, "direction": "decrease", "reason": "loss barely falls at 0.3",
                                    "confidence": 0.8}]
    analysis = "The curve improves." if healthy else "Validation accuracy is low and training loss is not falling."
    return json.dumps({"healthy": healthy, "analysis": analysis, "gradient": gradient})


def change(**values: Any) -> str:
    return json.dumps({"changes": [{"knob": k, "value": v, "reason": f"set {k} to {v}: the loss is not falling"}
                                   for k, v in values.items()], "expected_effect": "the loss falls"})




def adapt(llm: ScriptedLLM, epochs: int = 4, *, target_name: str = "digits", config: dict[str, Any] | None = None,
          **options: Any) -> AdaptiveTrial:
    target = make_target(target_name)
    client = llm.factory()(LLMSettings())
    transcript = Transcript(None)
    return run_adaptive_trial(target, target.default_config | (HOT if config is None else config) | {"epochs": epochs},
                              evaluator=Evaluator(client, transcript), advisor=Advisor(client, transcript), seed=0,
                              device=CPU, **options)


def agents_asked(llm: ScriptedLLM) -> list[str]:
    return [agent for agent, _ in llm.requests]


def test_a_lower_learning_rate_after_a_diverging_epoch_is_kept_by_the_ab_check(tmp_path: Path) -> None:
    llm = ScriptedLLM(evaluator=[verdict(False), verdict(True), verdict(True)], advisor=[change(learning_rate=0.01)])
    reporter, entries = Recorder(), list[dict[str, object]]()
    trial = adapt(llm, reporter=reporter, on_entry=entries.append)

    assert trial.result.ok and trial.stop_reason == "planned epochs done"
    assert len(trial.result.history) == 4 and trial.epochs_trained == 5  # epoch 2 was trained twice
    assert trial.final_config["learning_rate"] == 0.01 and trial.final_config["batch_size"] == 32
    assert [e["source"] for e in trial.schedule] == ["start", "advisor", "evaluator", "evaluator"]
    lowered = trial.schedule[1]
    assert lowered["epoch"] == 2 and lowered["changes"] == {"learning_rate": 0.01}
    assert lowered["previous"] == {"learning_rate": 0.3} and lowered["kept"] is True
    assert lowered["val_metric_with"] > lowered["val_metric_without"]
    assert lowered["val_metric"] == lowered["val_metric_with"] == trial.result.history[1].val_metric
    assert "loss is not falling" in lowered["reasons"]["learning_rate"]
    assert [e["values"]["learning_rate"] for e in trial.schedule] == [0.3, 0.01, 0.01, 0.01]
    assert [r.lr for r in trial.result.history] == pytest.approx([0.3, 0.01, 0.01, 0.01])
    # Healthy verdicts cost no Advisor call.
    assert agents_asked(llm) == ["evaluator", "advisor", "evaluator", "evaluator"]
    # The reporter sees the kept epochs only; the schedule round-trips through JSON.
    assert reporter.started == [4] and reporter.epochs == trial.result.history and reporter.ended == [trial.result]
    assert json.loads(json.dumps(trial.to_dict()))["schedule"] == trial.schedule

    log = schedule_lines(trial.schedule, "accuracy")
    assert log[1].startswith("- Epoch 2: learning_rate 0.3 -> 0.01, because set learning_rate to 0.01")
    assert "A/B check: kept (val accuracy" in log[1]
    assert "no change (the Evaluator judged the curve healthy" in log[2]
    assert entries == trial.schedule  # each entry reached the console as its epoch ended
    assert [f"- {describe_entry(e, 'accuracy')}" for e in entries] == log
    png = plot_schedule(tmp_path / "schedule.png", trial.schedule, "accuracy", title="digits")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_structural_change_is_refused_with_its_reason_and_nothing_is_trained_twice() -> None:
    llm = ScriptedLLM(evaluator=[verdict(False), verdict(False), verdict(True)],
                      advisor=[change(batch_size=64, optimizer="adam"), change(dropout=0.9)])
    trial = adapt(llm)

    refused = trial.schedule[1]
    assert refused["changes"] == {} and refused["kept"] is None
    assert refused["refused"] == [
        {"knob": "batch_size", "value": 64, "reason": "structural knob batch_size cannot change inside a run"},
        {"knob": "optimizer", "value": "adam", "reason": "structural knob optimizer cannot change inside a run"}]
    assert trial.final_config["batch_size"] == 32 and trial.final_config["optimizer"] == "sgd"
    # The Advisor hears why, and its next (clipped) change is tried.
    assert "batch_size=64 refused: structural knob batch_size cannot change inside a run" in llm.prompts("advisor")[1]
    clipped = trial.schedule[2]
    assert clipped["changes"] == {"dropout": 0.6} and clipped["kept"] in (True, False)
    assert any("clipped to 0.6" in note for note in clipped["notes"])
    assert trial.epochs_trained == 5 and trial.result.ok
    assert "Refused batch_size=64: structural knob batch_size cannot change inside a run." in \
        schedule_lines(trial.schedule, "accuracy")[1]


def test_the_epoch_budget_counts_both_branches() -> None:
    llm = ScriptedLLM(evaluator=[verdict(False)], advisor=[change(learning_rate=0.01)])
    trial = adapt(llm, epochs=6, epoch_budget=4)

    # 1 (epoch 1) + 2 (A/B of epoch 2) + 1 (epoch 3, no room left for a check, so no one is asked).
    assert trial.epochs_trained == 4 and len(trial.result.history) == 3
    assert trial.result.ok and trial.stop_reason == "epoch budget spent (4 epochs trained)"
    assert [e["source"] for e in trial.schedule] == ["start", "advisor", "budget"]
    assert agents_asked(llm) == ["evaluator", "advisor"]
    assert "too few for an A/B check" in schedule_lines(trial.schedule, "accuracy")[2]


def test_without_the_check_a_change_is_applied_and_costs_one_epoch() -> None:
    llm = ScriptedLLM(evaluator=[verdict(False), verdict(True)], advisor=[change(learning_rate=0.01)])
    trial = adapt(llm, epochs=3, check=False)
    assert trial.epochs_trained == 3 and trial.schedule[1]["kept"] is None
    assert trial.schedule[1]["val_metric_with"] == trial.result.history[1].val_metric
    assert trial.schedule[1]["val_metric_without"] is None
    assert "applied as is" in llm.prompts("advisor")[0]
    assert "Applied without an A/B check" in schedule_lines(trial.schedule, "accuracy")[1]


def test_a_tie_keeps_the_unchanged_run() -> None:
    """Momentum has no effect under Adam, so both branches score the same and the change is dropped."""
    config = HOT | {"optimizer": "adam", "learning_rate": 0.003, "momentum": 0.9}
    llm = ScriptedLLM(evaluator=[verdict(False, "momentum"), verdict(True)], advisor=[change(momentum=0.5)])
    trial = adapt(llm, epochs=3, config=config)
    tie = trial.schedule[1]
    assert tie["val_metric_with"] == tie["val_metric_without"] and tie["kept"] is False
    assert trial.final_config["momentum"] == 0.9 and tie["values"]["momentum"] == 0.9
    assert "momentum has no effect on adam" in tie["notes"]
    assert "A/B check: not kept" in schedule_lines(trial.schedule, "accuracy")[1]


def test_llm_failures_mean_no_change_and_the_trial_completes() -> None:
    llm = ScriptedLLM(evaluator=[500, verdict(False)], advisor=[500])
    trial = adapt(llm, epochs=3)
    assert trial.result.ok and trial.epochs_trained == 3
    assert [e["source"] for e in trial.schedule] == ["start", "fallback", "fallback"]
    assert "Evaluator failed" in trial.schedule[1]["notes"][0]
    assert "Advisor failed" in trial.schedule[2]["notes"][0]


def test_a_branch_that_diverges_loses_and_the_run_goes_on() -> None:
    target = make_target("digits")
    config = target.default_config | HOT | {"learning_rate": 0.01, "momentum": 0.9, "epochs": 3}
    data = target.load_splits(config)
    run = TrainingRun(target.build_model(config, data), data, TrainSettings.from_config(config),
                      task="classification", device=CPU, config=config, dynamic=target.dynamic_knobs())
    run.step()
    branches = ab_epoch(run, {"learning_rate": 10.0}, target.direction)  # beyond the space: ab_epoch trusts its input
    assert branches.with_change is None and not branches.kept
    assert branches.record is branches.without_change is not None
    assert run.fail_reason is None and run.epoch == 2 and run.config["learning_rate"] == 0.01
    assert any(note.startswith("with the change: diverged") for note in branches.notes)


def test_vetting_refuses_unknown_and_structural_knobs_and_repairs_values() -> None:
    target = make_target("iris")
    run = target.start_run(target.default_config, device=CPU)
    vetted = vet_changes(target.space, run, [
        {"knob": "learning_rate", "value": "5", "reason": "faster"},
        {"knob": "hidden_layers", "value": 3, "reason": "capacity"},
        {"knob": "warp", "value": 1, "reason": "?"},
        {"knob": "momentum", "value": target.default_config["momentum"], "reason": "keep"},
    ])
    assert vetted.changes == {"learning_rate": 0.3} and vetted.reasons == {"learning_rate": "faster"}
    assert [(r["knob"], r["reason"]) for r in vetted.refused] == [
        ("hidden_layers", "structural knob hidden_layers cannot change inside a run"), ("warp", "unknown knob warp")]
    assert any("clipped to 0.3" in n for n in vetted.notes) and any("nothing to change" in n for n in vetted.notes)


def test_an_in_run_reason_that_fails_the_word_checks_is_replaced_from_the_curve() -> None:
    """A 135M model's in-run reasons read "because None" or contradict the change: the schedule says what code saw."""
    bad = json.dumps({"changes": [{"knob": "learning_rate", "value": 0.01, "reason": "None"},
                                  {"knob": "momentum", "value": 0.5, "reason": "increase momentum to go faster"}],
                      "expected_effect": "the loss falls"})
    llm = ScriptedLLM(evaluator=[verdict(False), verdict(True), verdict(True)], advisor=[bad])
    trial = adapt(llm, check=False)
    entry = trial.schedule[1]
    assert entry["changes"] == {"learning_rate": 0.01, "momentum": 0.5}
    for knob, old, new in (("learning_rate", "0.3", "0.01"), ("momentum", "0.99", "0.5")):
        reason = entry["reasons"][knob]
        assert reason.startswith(f"(by lgt, from the evidence) {knob} {old} -> {new}; the curve after epoch 1 shows ")
    assert any("reason for momentum was replaced (says increase momentum" in n for n in entry["notes"])
    assert "None" not in " ".join(entry["reasons"].values())
