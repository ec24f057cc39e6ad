"""The hybrid proposer's decisions in code, without a database or an LLM server.

The gate (free departures, the share cap, the margin against TPE's own
picks), `quality`, `gradient_config`, and the parallel round's proposer
(`propose_batch`) on the synthetic target with a fake candidate source and a
fake Advisor: every decision here is the graph's own, so it is tested as
plain function calls.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from agents import AgentFailure, Choice, GradientStep, Verdict
from agents.records import TrialRecord
from graphs import proposers, rounds
from graphs.proposers import (
    DEPART_RATIO,
    GATE_FREE,
    GATE_MARGIN,
    gate,
    gradient_config,
    overruled,
    propose_batch,
    quality,
)
from graphs.state import Deps, TuningState
from lgt.observer import RunObserver
from tuning_targets import SearchSpace, config_key
from tuning_targets.space import CategoricalKnob, FloatKnob, IntKnob
from tuning_targets.synthetic import SyntheticTarget


def trial(value: float | None, departed: bool | None = None, status: str = "complete") -> TrialRecord:
    return {"status": status, "val_metric": value, "departed": departed}


# --- quality ------------------------------------------------------------------------------------------------------

def test_quality_is_the_share_of_earlier_trials_beaten_with_ties_half() -> None:
    trials = [trial(0.5), trial(None, status="failed"), trial(0.7), trial(0.6), trial(0.6)]
    assert quality(trials, 0, "maximize") == 1.0  # nothing to beat yet
    assert quality(trials, 1, "maximize") == 0.0  # a failure beats nothing
    assert quality(trials, 3, "maximize") == pytest.approx(1 / 2)  # beat 0.5, not 0.7 (the failure is no trial)
    assert quality(trials, 4, "maximize") == pytest.approx((1 + 0 + 0.5) / 3)  # a tie counts half
    assert quality(trials, 3, "minimize") == pytest.approx(1 / 2)  # beat 0.7, not 0.5
    assert quality(trials, 2, "minimize") == 0.0


# --- the gate -----------------------------------------------------------------------------------------------------

def test_the_first_departures_are_free_whatever_they_scored() -> None:
    trials = [trial(0.9), trial(0.95, departed=False), trial(0.1, departed=True)]
    assert GATE_FREE == 2 and gate(trials, "maximize") == (True, "")


def test_departures_are_capped_at_a_share_of_the_rounds() -> None:
    trials = [trial(0.5), *[trial(0.6 + i / 100, departed=i < 2) for i in range(5)]]  # 2 of 5 hybrid rounds
    is_open, why = gate(trials, "maximize")
    assert not is_open and "already departed from TPE's pick in 2 of 5 rounds" in why
    more = [*trials, trial(0.7, departed=False), trial(0.71, departed=False)]  # 8 rounds: 40% allows 3
    assert gate(more, "maximize")[0]


@pytest.mark.parametrize("direction", ["maximize", "minimize"])
def test_departures_that_do_worse_than_tpes_picks_close_the_gate(direction: str) -> None:
    sign = 1.0 if direction == "maximize" else -1.0
    values = [(0.5, None), (0.6, False), (0.4, True), (0.7, False), (0.3, True), (0.8, False), (0.9, False),
              (0.95, False)]  # 7 hybrid rounds: 3 departures allowed, 2 taken, both worse than all before
    worse = [trial(sign * v, departed=d) for v, d in values]
    is_open, why = gate(worse, direction)
    assert not is_open and "beat 0% of the trials before them on average, TPE's own 5 picks 100%" in why
    better = [trial(sign * v, departed=d) for v, d in [(0.5, None), (0.6, False), (0.65, True), (0.7, False),
                                                          (0.75, True), (0.8, False), (0.9, False), (0.95, False)]]
    assert gate(better, direction) == (True, "")


def test_the_margin_lets_departures_do_a_little_worse_than_tpes_picks(monkeypatch: pytest.MonkeyPatch) -> None:
    trials = [trial(0.5), trial(0.6, departed=True), trial(0.6, departed=True), trial(0.6, departed=False),
              trial(0.6, departed=False), trial(0.6, departed=False), trial(0.6, departed=False),
              trial(0.6, departed=False)]
    theirs = 0.8
    for mine, expected in ((theirs - GATE_MARGIN / 2, True), (theirs - 2 * GATE_MARGIN, False)):
        qualities = {1: mine, 2: mine} | dict.fromkeys(range(3, 8), theirs)
        monkeypatch.setattr(proposers, "quality", lambda trials, i, direction, q=qualities: q[i])
        assert gate(trials, "maximize")[0] is expected


# --- gradient_config ----------------------------------------------------------------------------------------------

SPACE = SearchSpace([
    FloatKnob("lr", "hyperparameters", "a log knob", low=1e-4, high=1.0, log=True),
    FloatKnob("decay", "hyperparameters", "a linear knob", low=0.0, high=1.0),
    IntKnob("layers", "architecture", "an int knob", low=1, high=9),
    CategoricalKnob("width", "architecture", "ordered choices", choices=(16, 32, 64)),
    CategoricalKnob("act", "architecture", "unordered choices", choices=("relu", "tanh")),
])
BASE = {"lr": 0.01, "decay": 0.5, "layers": 4, "width": 32, "act": "relu"}


def verdict(*steps: tuple[str, str]) -> Verdict:
    return Verdict(analysis="", gradient=[GradientStep(knob=k, direction=d, reason="", confidence=0.5)
                                          for k, d in steps])


def test_gradient_config_moves_each_kind_of_knob_its_way() -> None:
    assert gradient_config(SPACE, BASE, verdict(("lr", "increase"), ("decay", "decrease"))) == \
        BASE | {"lr": 0.02, "decay": 0.25}  # a log knob doubles, a linear one moves a quarter of its range
    assert gradient_config(SPACE, BASE, verdict(("layers", "increase"), ("width", "increase"))) == \
        BASE | {"layers": 6, "width": 64}  # an int knob rounds; an ordered choice steps
    assert gradient_config(SPACE, BASE, verdict(("act", "switch to tanh"))) == BASE | {"act": "tanh"}


def test_gradient_config_keeps_two_steps_clips_and_refuses_what_changes_nothing() -> None:
    assert gradient_config(SPACE, BASE, None) is None
    assert gradient_config(SPACE, BASE | {"width": 64}, verdict(("width", "increase"))) is None  # clipped: no move
    assert gradient_config(SPACE, BASE, verdict(("momentum", "increase"))) is None  # no such knob
    moved = gradient_config(SPACE, BASE, verdict(("decay", "increase"), ("layers", "decrease"), ("lr", "increase")))
    assert moved == BASE | {"decay": 0.75, "layers": 2}  # the third step is not taken
    assert gradient_config(SPACE, BASE | {"decay": 0.9}, verdict(("decay", "increase"))) == BASE | {"decay": 1.0}


# --- the batch proposer without a database ------------------------------------------------------------------------

TARGET = SyntheticTarget(seconds=0)
DEFAULT = TARGET.default_config
A, B, C, D = (DEFAULT | {"x": x} for x in (0.3, 0.4, 0.5, 0.6))


class Source:
    """TPE's candidates, fixed: asks A then B, the good region C and D, scored in that order."""

    def next(self, trials: Sequence[TrialRecord], n: int = 1) -> list[dict[str, Any]]:
        return [A, B][:n]

    def region(self, trials: Sequence[TrialRecord], n: int, seed: int) -> list[dict[str, Any]]:
        return [C, D]

    def scores(self, trials: Sequence[TrialRecord], configs: Sequence[Mapping[str, Any]]) -> list[float]:
        return [float(-i) for i in range(len(configs))]


class Advisor:
    """Chooses (free words) or picks (menu) the scripted candidate; or fails."""

    def __init__(self, choice: Choice | Exception) -> None:
        self.choice = choice
        self.shown: list[str] = []

    def _answer(self, candidates: Sequence[str]) -> Choice:
        self.shown = list(candidates)
        if isinstance(self.choice, Exception):
            raise self.choice
        return self.choice

    def choose(self, space: Any, trials: Any, metric: Any, candidates: Sequence[str], **_: Any) -> Choice:
        return self._answer(candidates)

    def pick(self, space: Any, trials: Any, metric: Any, candidates: Sequence[str], **_: Any) -> Choice:
        return self._answer(candidates)


def deps(advisor: Advisor, words: str = "free") -> Deps:
    return Deps(target=TARGET, evaluator=None, optimizer=None, recorder=None, progress=RunObserver(),  # type: ignore[arg-type]
                advisor=advisor, parallel=2, candidates=Source(), proposer="hybrid", words=words)  # type: ignore[arg-type]


def state(d: Deps, history: Sequence[tuple[float, bool | None]] = ()) -> TuningState:
    """Round 1's default trial, then (value, departed) rounds, each with a config of its own."""
    result = TARGET.run(DEFAULT).to_dict()
    trials = [rounds.new_record(d, 1, {"config": DEFAULT, "source": "default"}, result)]
    for i, (value, departed) in enumerate(history, start=2):
        record = rounds.new_record(d, i, {"config": DEFAULT | {"y": i / 100}, "source": "tpe"}, result)
        trials.append(record | {"val_metric": value, "departed": departed})  # type: ignore[typeddict-item]
    for i, record in enumerate(trials):
        record["number"] = i
    return {"round": len(trials) + 1, "budget": 10, "trials": trials, "best": 0, "guidance": "",
            "last_verdict": None, "feedback": None}


def keys(batch: Sequence[proposers.Candidate]) -> list[str]:
    return [config_key(c.config) for c in batch]


def test_an_open_gate_lets_the_advisors_pick_replace_the_last_slot() -> None:
    advisor = Advisor(Choice(pick=3, reason="", expected_effect=""))
    batch = propose_batch(state(d := deps(advisor)), d, 2)
    assert keys(batch) == keys([proposers.Candidate(A, "tpe"), proposers.Candidate(D, "advisor")])
    assert [c.source for c in batch] == ["tpe", "advisor"] and batch[1].departed and batch[1].pick == 3
    assert batch[0].departed is False and not batch[1].gated
    assert len(advisor.shown) == 4 and "TPE's next pick" in advisor.shown[0]  # the two asks, then the region


def test_a_closed_gate_keeps_tpes_asks_and_says_why() -> None:
    departed_twice = [(0.6, True), (0.61, True)]  # at the cap: two departures in two hybrid rounds
    advisor = Advisor(Choice(pick=3, reason="", expected_effect=""))
    batch = propose_batch(state(d := deps(advisor), departed_twice), d, 2)
    assert keys(batch) == [config_key(A), config_key(B)] and [c.source for c in batch] == ["tpe", "tpe"]
    assert batch[1].gated and batch[1].pick == 3 and batch[1].departed is False
    assert batch[1].notes[-1].startswith("gate: the Advisor already departed")
    assert "TPE's candidate 1 trains instead of the Advisor's pick (candidate 3)" in batch[1].notes[-1]


def test_a_menu_pick_short_of_the_margin_keeps_tpes_asks() -> None:
    preference = [0.3, 0.25, 0.2, 0.25 * (DEPART_RATIO - 0.1)]  # candidate 3 against the last ask (candidate 1)
    advisor = Advisor(Choice(pick=3, reason="", expected_effect="", scores={"mode": "scored",
                                                                             "preference": preference}))
    batch = propose_batch(state(d := deps(advisor, words="menu")), d, 2)
    assert keys(batch) == [config_key(A), config_key(B)]
    assert batch[1].gated and batch[1].pick == 3 and "leaned to candidate 3" in batch[1].notes[-1]
    assert batch[1].choice["preference"] == preference
    advisor.choice = advisor.choice.model_copy(update={"scores": {"mode": "scored", "preference": [
        0.3, 0.25, 0.2, 0.25 * (DEPART_RATIO + 0.1)]}})
    assert propose_batch(state(d), d, 2)[1].source == "advisor"


def test_a_pick_of_tpes_own_ask_or_a_failing_advisor_leaves_the_asks() -> None:
    same = Advisor(Choice(pick=1, reason="", expected_effect=""))
    batch = propose_batch(state(d := deps(same)), d, 2)
    assert keys(batch) == [config_key(A), config_key(B)] and batch[1].pick == 1 and not batch[1].gated
    failing = Advisor(AgentFailure("advisor", "no reply", 1))
    batch = propose_batch(state(d := deps(failing)), d, 2)
    assert keys(batch) == [config_key(A), config_key(B)] and all(c.pick is None for c in batch)


def test_serial_and_parallel_rounds_read_the_same_gate() -> None:
    d = deps(Advisor(Choice(pick=3, reason="", expected_effect="")))
    r = proposers.Round.of(state(d, [(0.6, True), (0.61, True)]), d)
    refused = overruled(r, 3, None)
    assert refused is not None and refused.startswith("gate: ") and "candidate 0 trains" in refused
    assert overruled(proposers.Round.of(state(d), d), 3, None) is None
    assert "leaned to candidate 2" in (overruled(proposers.Round.of(state(d), d), 2, [1.0, 0.5, 1.2]) or "")
