"""Turning an Advisor's untrusted proposal into a config that may train.

The LLM's output is treated like any other untrusted input: unknown knobs
are dropped, values are clipped or snapped into range, a config that was
already run is refused. When the Advisor cannot produce anything usable,
TPE's candidate 0 trains instead (`graphs.proposers`), so a round never stalls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from lgt.vocabulary import Source
from tuning_targets import Config, SearchSpace, config_key


@dataclass
class Candidate:
    """A config ready to train, with where it came from, why, and the evidence for it.

    `reasons` (knob: sentence) and `expected_effect` are the LLM's words once
    they passed `agents.wording`, else sentences rendered from `evidence`
    (marked); `replaced` names every text that was replaced. `pick`,
    `departed` and `gated` record the Advisor's choice among TPE's
    candidates (hybrid proposer): which it picked, whether the config that
    trains differs from TPE's candidate 0, and whether the gate overruled it.
    """

    config: Config
    source: Source
    changes: dict[str, Any] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    expected_effect: str = ""
    notes: list[str] = field(default_factory=list)
    evidence: dict[str, Any] = field(default_factory=dict)
    rationale: str = ""
    replaced: list[str] = field(default_factory=list)
    pick: int | None = None
    departed: bool | None = None
    gated: bool = False
    cause: str | None = None  # menu mode: the best trial's problem the Advisor's pick acts on
    causes: dict[str, str] = field(default_factory=dict)  # menu mode: knob -> the problem a proposed change acts on
    choice: dict[str, Any] = field(default_factory=dict)  # how the Advisor's pick was read (`agents.scoring`)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def apply_proposal(space: SearchSpace, base: Config, changes: list[dict[str, Any]]) -> tuple[Config, dict[str, Any],
                                                                                           dict[str, str], list[str]]:
    """Apply the proposed changes to `base`, repairing what does not fit the space.

    Returns the config, the changes actually applied, the reasons for them
    and notes on every repair (to show the Advisor next time).
    """
    raw = {c["knob"]: c["value"] for c in changes}
    reasons = {c["knob"]: str(c.get("reason", "")) for c in changes if c["knob"] in space}
    checked = space.validate(raw, base=base, strict=False)
    applied = {k: checked.config[k] for k in raw if k in checked.config and checked.config[k] != base.get(k)}
    return checked.config, applied, {k: reasons[k] for k in applied if k in reasons}, checked.notes


def causes_of(changes: list[dict[str, Any]]) -> dict[str, str]:
    """Menu mode: knob -> the problem its change acts on, as the Advisor picked it."""
    return {str(c["knob"]): str(c["cause"]) for c in changes if c.get("cause")}


def perturb(space: SearchSpace, config: Config, tried: set[str], rng: random.Random) -> tuple[Config, list[str]]:
    """Nudge a repeated config into an untried one by resampling one knob, then more."""
    knobs = list(space.active_config(config))  # on a conditional space, the knobs of the config's own family
    for attempt in range(1, 50):
        candidate = dict(config)
        names = rng.sample(knobs, k=min(len(knobs), 1 + attempt // 10))
        for name in names:
            candidate[name] = space.knobs[name].sample(rng)
        candidate = space.validate(candidate, strict=False).config
        if config_key(candidate) not in tried:
            return candidate, names
    return space.sample(rng), knobs
