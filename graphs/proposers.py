"""Who proposes a round's config: the three proposers, and the gate that keeps the LLM honest.

- ``hybrid`` (the default): TPE, told every trial of the run, proposes a few
  candidates: its own next pick (candidate 0, what `lgt baseline --method
  tpe` would try next from the same history and seed), picks from its good
  region, and the Evaluator's gradient applied to the best config. The
  Advisor sees each as its changes from the best config with the evidence
  computed in code, picks one, may adjust two knobs, and says why. A gate in
  code decides whether a pick that departs from candidate 0 stands: while
  the Advisor's departures do no worse than TPE's own picks, and stay under
  a share of the rounds, they stand; otherwise candidate 0 trains, and the
  change log says why.
- ``llm``: the Advisor proposes freely (today's LGT, kept comparable as the
  `lgt-llm` method); its proposals are repaired and repeats refused.
- ``tpe``: candidate 0 every round, no LLM choice.

Whatever the proposer, every LLM text that reaches the candidate passed the
checks of `agents.wording`, or was replaced by a sentence rendered from the
evidence (`graphs.evidence`, marked), and each change carries its evidence.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from agents import AgentFailure, Verdict, scoring
from agents.records import TrialRecord, scored, val
from agents.wording import grounding
from graphs import rounds, words
from graphs.evidence import (
    Option,
    Origin,
    knob_support,
    menu_option_line,
    option_line,
    rank,
    with_support,
)
from graphs.proposals import Candidate, apply_proposal, causes_of, perturb
from graphs.state import Deps, TuningState
from lgt.direction import is_better
from lgt.vocabulary import Proposer, Source
from tuning_targets import Config, SearchSpace, config_changes, config_key
from tuning_targets.space import CategoricalKnob, FloatKnob, IntKnob

GATE_FREE = 2  # departures allowed before their record is judged
GATE_SHARE = 0.4  # the most of a run's rounds that may depart from candidate 0
GATE_MARGIN = 0.05  # how much worse than TPE's picks (mean rank share) departures may do
GRADIENT_STEPS = 2
DEPART_RATIO = 1.5  # menu mode: how much more the Advisor must prefer a candidate over TPE's pick to depart


@dataclass
class Round:
    """What every proposer reads about the round it proposes for."""

    deps: Deps
    state: TuningState
    trials: list[TrialRecord]
    base: Config  # the best config so far: proposals are changes to it
    best: TrialRecord | None
    tried: set[str]
    knobs: dict[str, dict[str, Any]]  # name: spec, as the agents see it
    rng: random.Random

    @classmethod
    def of(cls, state: TuningState, deps: Deps) -> Round:
        return cls(deps, state, list(state["trials"]), rounds.base_config(deps, state), rounds.best_record(state),
                   {config_key(t["config"]) for t in state["trials"]},
                   {k["name"]: k for k in deps.target.space.describe()}, random.Random(deps.seed * 1000 + state["round"]))

    def support(self, config: Mapping[str, Any]) -> dict[str, str]:
        return {k: knob_support(k, new, self.trials, self.deps.metric, self.knobs.get(k, {}))
                for k, (_, new) in config_changes(self.base, config).items()}


def propose(state: TuningState, deps: Deps) -> Candidate:
    """The round's candidate, by the run's proposer."""
    return PROPOSERS[deps.proposer](Round.of(state, deps))


def prior_update(state: TuningState, candidates: Sequence[Candidate]) -> dict[str, Any]:
    """The state's position record (`pick_prior`) with this round's scored picks folded in (`agents.scoring`)."""
    picks = [c.choice for c in candidates if c.choice.get("mode") == "scored"]
    return {"pick_prior": scoring.folded(state.get("pick_prior"), picks)} if picks else {}


def checked_words(r: Round, candidate: Candidate, option: Option | None, shown: Sequence[str] = ()) -> Candidate:
    """The candidate with its LLM texts checked (`graphs.words`) and its evidence attached.

    `shown`: what the Advisor read besides the trials (candidate lines); its
    numbers, and the trials', are the ones its texts may cite.
    """
    facts = words.facts_of(*r.trials) | grounding(list(shown))
    return words.checked_candidate(candidate, r.base, r.support(candidate.config), r.knobs, option, r.best,
                                   r.deps.metric, facts)


# --- candidates ---------------------------------------------------------------------------------------------------

def gradient_config(space: SearchSpace, base: Config, verdict: Verdict | None) -> Config | None:
    """The best config moved along the Evaluator's gradient (its first two steps that apply), or None."""
    if verdict is None:
        return None
    config = dict(base)
    for step in verdict.gradient[:GRADIENT_STEPS]:
        knob = space.knobs.get(step.knob)
        if knob is None or knob.name not in base:  # not a knob, or not one of the best config's model family
            continue
        direction = step.direction
        if isinstance(knob, CategoricalKnob):
            if direction.startswith("switch to "):
                config[knob.name] = direction.removeprefix("switch to ").strip().strip('"')
            elif knob.is_ordered and base[knob.name] in knob.choices:
                i = list(knob.choices).index(base[knob.name]) + (1 if direction == "increase" else -1)
                config[knob.name] = knob.choices[min(max(i, 0), len(knob.choices) - 1)]
        elif isinstance(knob, FloatKnob | IntKnob) and direction in ("increase", "decrease"):
            up = direction == "increase"
            now = float(base[knob.name])
            if knob.log and now > 0:
                moved = now * 2 if up else now / 2
            else:
                step_size = 0.25 * (float(knob.high) - float(knob.low))
                moved = now + step_size if up else now - step_size
            config[knob.name] = round(moved) if isinstance(knob, IntKnob) else moved
    repaired = space.validate(config, strict=False).config
    return None if config_key(repaired) == config_key(base) else repaired


def options(r: Round) -> list[Option]:
    """Candidate 0 (TPE's next pick), the gradient's config, then TPE's good region, up to the run's number."""
    source = r.deps.candidates
    assert source is not None, "the hybrid and tpe proposers need a candidate source"
    found = [Option(_untried(r, source.next(r.trials, 1)[0]), "tpe")]
    seen = {config_key(found[0].config)}

    def add(config: Config | None, origin: Origin) -> None:
        if config is not None and config_key(config) not in seen and config_key(config) not in r.tried \
                and len(found) < r.deps.n_candidates:
            found.append(Option(config, origin))
            seen.add(config_key(config))

    add(gradient_config(r.deps.target.space, r.base, rounds.last_gradient(r.state)), "gradient")
    for config in source.region(r.trials, r.deps.n_candidates, r.deps.seed * 7919 + r.state["round"]):
        add(config, "region")
    rank(found, source.scores(r.trials, [o.config for o in found]))
    return [with_support(o, r.base, r.trials, r.deps.metric, r.knobs) for o in found]


def _untried(r: Round, config: Config) -> Config:
    """TPE's pick, or (should it repeat a config already run, as a fresh TPE's startup draws can) a nudge of it."""
    if config_key(config) not in r.tried:
        return config
    return perturb(r.deps.target.space, config, r.tried, r.rng)[0]


def _anchored(r: Round, first: Option, source: Source, note: str | None = None, **choice: Any) -> Candidate:
    """Candidate 0 as the round's config, its reasons rendered from the evidence."""
    candidate = Candidate(dict(first.config), source, notes=[note] if note else [], **choice)
    return checked_words(r, candidate, first)


# --- the gate -----------------------------------------------------------------------------------------------------

def quality(trials: Sequence[TrialRecord], index: int, direction: str) -> float:
    """Share of the earlier completed trials that trial `index` beat (ties count half); a failure scores 0."""
    trial = trials[index]
    earlier = [t for t in trials[:index] if scored(t)]
    if not scored(trial):
        return 0.0
    if not earlier:
        return 1.0
    mine = val(trial)
    beaten = sum(1.0 if is_better(mine, val(t), direction) else 0.5 if mine == val(t) else 0.0 for t in earlier)
    return beaten / len(earlier)


def gate(trials: Sequence[TrialRecord], direction: str) -> tuple[bool, str]:
    """Whether the Advisor may depart from candidate 0 this round, and why not (from the run's own record)."""
    hybrid = [i for i, t in enumerate(trials) if t.get("departed") is not None]
    departures = [i for i in hybrid if trials[i].get("departed")]
    anchored = [i for i in hybrid if not trials[i].get("departed")]
    rounds_so_far = len(hybrid) + 1
    allowed = max(GATE_FREE, int(GATE_SHARE * rounds_so_far))
    if len(departures) >= allowed:
        return False, (f"the Advisor already departed from TPE's pick in {len(departures)} of {len(hybrid)} rounds, "
                       f"the most allowed by now ({GATE_FREE}, or {GATE_SHARE:.0%} of the rounds once that is more)")
    if len(departures) < GATE_FREE:
        return True, ""
    mine = statistics.fmean(quality(trials, i, direction) for i in departures)
    theirs = statistics.fmean(quality(trials, i, direction) for i in anchored) if anchored else 0.5
    if mine + GATE_MARGIN < theirs:
        return False, (f"the Advisor's {len(departures)} departures from TPE's pick beat {mine:.0%} of the trials "
                       f"before them on average, TPE's own {len(anchored)} picks {theirs:.0%}")
    return True, ""


def overruled(r: Round, pick: int, preference: Sequence[float] | None, anchor: int = 0) -> str | None:
    """Why the Advisor's departure to candidate `pick` from TPE's candidate `anchor` does not stand (None: it stands).

    The one hybrid gate of serial and parallel rounds. In menu mode the pick
    must be preferred `DEPART_RATIO` times over TPE's (`preference`: the
    model's preference per candidate): a small model's preferences are close
    to even, and a near-tie is no reason to leave TPE's pick. Then the run's
    own record must allow a departure (`gate`).
    """
    if preference:
        margin = preference[pick] / max(preference[anchor], 1e-9)
        if margin < DEPART_RATIO:
            return (f"the Advisor leaned to candidate {pick} ({margin:.2f}x its preference for TPE's pick, short of "
                    f"the {DEPART_RATIO}x a departure needs), so TPE's candidate {anchor} trains")
    is_open, why = gate(r.trials, r.deps.target.direction)
    if not is_open:
        return f"gate: {why}, so TPE's candidate {anchor} trains instead of the Advisor's pick (candidate {pick})"
    return None


# --- the proposers ------------------------------------------------------------------------------------------------

def propose_tpe(r: Round) -> Candidate:
    """TPE's candidate 0, no LLM choice."""
    source = r.deps.candidates
    assert source is not None, "the tpe proposer needs a candidate source"
    first = Option(_untried(r, source.next(r.trials, 1)[0]), "tpe")
    rank([first], source.scores(r.trials, [first.config]))
    return _anchored(r, with_support(first, r.base, r.trials, r.deps.metric, r.knobs), "tpe")


def propose_hybrid(r: Round) -> Candidate:
    """The Advisor chooses among TPE's candidates; the gate decides whether a departure from candidate 0 stands."""
    deps = r.deps
    assert deps.advisor is not None, "the hybrid proposer needs an Advisor"
    found = options(r)
    if deps.words == "menu":
        return _picked(r, found)
    lines = [option_line(i, o) for i, o in enumerate(found)]
    feedback: Any = r.state.get("feedback") or ()
    notes: list[str] = []
    for attempt in (1, 2):
        try:
            choice = deps.advisor.choose(space=deps.target.space.describe(), trials=r.trials, metric=deps.metric,
                                         candidates=lines, gradient=rounds.last_gradient(r.state),
                                         guidance=r.state.get("guidance") or None, feedback=feedback,
                                         data=deps.data_profile)
        except AgentFailure as exc:
            return _anchored(r, found[0], "fallback", f"Advisor failed ({exc}); TPE's candidate 0 trains")
        option = found[choice.pick]
        config, _, adjusted_reasons, notes = apply_proposal(deps.target.space, option.config,
                                                            [c.model_dump() for c in choice.adjust])
        departed = config_key(config) != config_key(found[0].config)
        if not departed or config_key(config) not in r.tried:
            break
        feedback = "That choice (with its adjustments) repeats a configuration already run. Pick another."
        notes.append("the Advisor's choice repeated a config already run" + ("; asked again" if attempt == 1 else ""))
    else:
        return _anchored(r, found[0], "tpe", "the Advisor's choice repeated a config already run twice; "
                                             "TPE's candidate 0 trains", pick=choice.pick, departed=False)
    refused = overruled(r, choice.pick, None) if departed else None
    if refused:
        return _anchored(r, found[0], "tpe", refused, pick=choice.pick, departed=False, gated=True)
    candidate = Candidate(config, "advisor" if departed else "tpe", reasons=adjusted_reasons,
                          expected_effect=choice.expected_effect, notes=notes, rationale=choice.reason,
                          pick=choice.pick, departed=departed,
                          choice={"mode": "generated", "shown": list(range(len(found)))})
    return checked_words(r, candidate, option, lines)


def _picked(r: Round, found: list[Option]) -> Candidate:
    """Menu mode: the Advisor's pick read from its probabilities (`agents.Advisor.pick`), then the gate (`overruled`).

    The candidates are shown in an order shuffled per round, and the
    model's position prior (kept in the run's state, `pick_prior`) is
    divided out of its letter probabilities.
    """
    deps = r.deps
    assert deps.advisor is not None, "the hybrid proposer needs an Advisor"
    if len(found) == 1:  # nothing to choose between (no region yet, no gradient that moves anything)
        return _anchored(r, found[0], "tpe")
    problems = list(words.problems_of(r.best, deps.metric))
    order = scoring.shuffled(len(found), deps.seed * 1000 + r.state["round"])
    lines = [menu_option_line(o, problems, r.knobs) for o in found]
    try:
        choice = deps.advisor.pick(space=deps.target.space.describe(), trials=r.trials, metric=deps.metric,
                                   candidates=lines, order=order,
                                   position_prior=scoring.prior(r.state.get("pick_prior") or {}, len(found)),
                                   causes=problems, gradient=rounds.last_gradient(r.state),
                                   guidance=r.state.get("guidance") or None, data=deps.data_profile)
    except AgentFailure as exc:
        return _anchored(r, found[0], "fallback", f"Advisor failed ({exc}); TPE's candidate 0 trains")
    scores = dict(choice.scores or {})
    scores |= {"position": list(order).index(choice.pick), "label": scoring.LABELS[list(order).index(choice.pick)]}
    refused = overruled(r, choice.pick, scores.get("preference")) if choice.pick != 0 else None
    if refused:
        return _anchored(r, found[0], "tpe", refused, pick=choice.pick, departed=False, gated=True, choice=scores)
    option = found[choice.pick]
    candidate = Candidate(dict(option.config), "advisor" if choice.pick != 0 else "tpe", pick=choice.pick,
                          departed=choice.pick != 0, cause=choice.cause, choice=scores)
    return checked_words(r, candidate, option, lines)


def propose_llm(r: Round) -> Candidate:
    """The Advisor's free proposal: repaired, a repeat refused once, then perturbed; TPE's pick if it fails."""
    deps = r.deps
    assert deps.advisor is not None, "the llm proposer needs an Advisor"
    space = deps.target.space
    feedback: Any = r.state.get("feedback") or ()
    for attempt in (1, 2):
        try:
            proposal = deps.advisor.propose(space=space.describe(), trials=r.trials, metric=deps.metric,
                                            gradient=rounds.last_gradient(r.state),
                                            guidance=r.state.get("guidance") or None, feedback=feedback,
                                            data=deps.data_profile)
        except AgentFailure as exc:
            source = deps.candidates
            assert source is not None, "a fallback needs a candidate source"
            first = Option(source.next(r.trials, 1)[0], "tpe")
            return _anchored(r, with_support(first, r.base, r.trials, deps.metric, r.knobs), "fallback",
                             f"Advisor failed ({exc}); TPE suggested this round")
        dumped = proposal.model_dump()
        config, changes, reasons, notes = apply_proposal(space, r.base, dumped["changes"])
        candidate = Candidate(config, "advisor", changes, reasons, dumped.get("expected_effect", ""), notes,
                              causes=causes_of(dumped["changes"]))
        if config_key(config) not in r.tried:
            return checked_words(r, candidate, None)
        feedback = ("That config was already run (" + (", ".join(f"{k}={v}" for k, v in changes.items())
                    or "no effective change") + "). Propose a different change.")
        notes.append("proposal repeated a config already run" + ("; asked again" if attempt == 1 else ""))
    return checked_words(r, rounds.nudge(candidate, space, r.base, r.tried, r.rng), None)


# --- parallel rounds ----------------------------------------------------------------------------------------------

def propose_batch(state: TuningState, deps: Deps, size: int) -> list[Candidate]:
    """A parallel round's `size` candidates, by the run's proposer.

    tpe: TPE's next `size` asks. hybrid: the same, and the Advisor picks
    once among them and the extra candidates; a pick beyond TPE's asks
    replaces the last slot, if the gate lets it. llm: the batch Advisor's
    free proposals, repeats refused once, then nudged or filled by TPE.
    """
    r = Round.of(state, deps)
    if deps.proposer == "llm":
        return _free_batch(r, size)
    source = deps.candidates
    assert source is not None, "the hybrid and tpe proposers need a candidate source"
    slots = [Option(c, "tpe") for c in source.next(r.trials, size)]
    extra = [o for o in options(r)[1:]] if deps.proposer == "hybrid" else []
    everything = rank([*slots, *extra], source.scores(r.trials, [o.config for o in [*slots, *extra]]))
    everything = [with_support(o, r.base, r.trials, deps.metric, r.knobs) for o in everything]
    anchored = [_anchored(r, o, "tpe", departed=False if deps.proposer == "hybrid" else None)
                for o in everything[:len(slots)]]
    if deps.proposer != "hybrid" or not extra:
        return anchored
    assert deps.advisor is not None, "the hybrid proposer needs an Advisor"
    lines = [option_line(i, o) for i, o in enumerate(everything)]
    problems = list(words.problems_of(r.best, deps.metric))
    try:
        if deps.words == "menu":
            order = scoring.shuffled(len(everything), deps.seed * 1000 + state["round"])
            lines = [menu_option_line(o, problems, r.knobs) for o in everything]
            choice = deps.advisor.pick(space=deps.target.space.describe(), trials=r.trials, metric=deps.metric,
                                       candidates=lines, order=order, causes=problems,
                                       position_prior=scoring.prior(state.get("pick_prior") or {}, len(everything)),
                                       gradient=rounds.last_gradient(state), guidance=state.get("guidance") or None,
                                       data=deps.data_profile)
        else:
            choice = deps.advisor.choose(space=deps.target.space.describe(), trials=r.trials, metric=deps.metric,
                                         candidates=lines, gradient=rounds.last_gradient(state),
                                         guidance=state.get("guidance") or None,
                                         feedback=state.get("feedback") or (), data=deps.data_profile)
    except AgentFailure as exc:
        deps.progress.on_message(f"  advisor unavailable ({exc}); TPE fills the round")
        return anchored
    scores = dict(choice.scores or {"mode": "generated", "shown": list(range(len(everything)))})
    anchored[-1].choice = scores
    option = everything[choice.pick]
    config, _, reasons, notes = apply_proposal(deps.target.space, option.config, [c.model_dump() for c in choice.adjust])
    if any(config_key(config) == config_key(c.config) for c in anchored) or config_key(config) in r.tried:
        anchored[min(choice.pick, len(anchored) - 1)].pick = choice.pick
        return anchored
    refused = overruled(r, choice.pick, scores.get("preference"), anchor=len(anchored) - 1)
    if refused:  # the pick would replace the last slot, TPE's last ask
        anchored[-1].notes.append(refused)
        anchored[-1].gated, anchored[-1].pick = True, choice.pick
        return anchored
    pick = checked_words(r, Candidate(config, "advisor", reasons=reasons, expected_effect=choice.expected_effect,
                                      notes=notes, rationale=choice.reason, pick=choice.pick, departed=True,
                                      cause=choice.cause, choice=scores), option, lines)
    return [*anchored[:-1], pick]


def _free_batch(r: Round, size: int) -> list[Candidate]:
    """The batch Advisor's proposals: repaired, duplicates (with the past or each other) refused once."""
    deps = r.deps
    assert deps.batch_advisor is not None, "parallel rounds need the batch Advisor"
    space = deps.target.space
    tried = set(r.tried)
    chosen: list[Candidate] = []
    repeats: list[Candidate] = []
    feedback: Any = r.state.get("feedback") or ()
    for _ in (1, 2):
        wanted = size - len(chosen)
        if wanted == 0:
            break
        try:
            proposals = deps.batch_advisor.propose_batch(wanted, space=space.describe(), trials=r.trials,
                                                         metric=deps.metric, gradient=rounds.last_gradient(r.state),
                                                         guidance=r.state.get("guidance") or None,
                                                         feedback=feedback, data=deps.data_profile)
        except AgentFailure as exc:
            deps.progress.on_message(f"  advisor unavailable ({exc}); TPE fills the round")
            break
        refused = []
        for proposal in proposals[:wanted]:
            dumped = proposal.model_dump()
            config, changes, reasons, notes = apply_proposal(space, r.base, dumped["changes"])
            candidate = Candidate(config, "advisor", changes, reasons, dumped.get("expected_effect", ""), notes,
                                  causes=causes_of(dumped["changes"]))
            if config_key(config) in tried:
                candidate.notes.append("repeated a config already run or proposed in this batch")
                repeats.append(candidate)
                refused.append(", ".join(f"{k}={v}" for k, v in changes.items()) or "no effective change")
                continue
            tried.add(config_key(config))
            chosen.append(checked_words(r, candidate, None))
        feedback = ("These were already run or proposed twice: " + "; ".join(refused)
                    + ". Propose different changes.") if refused else ()
    while len(chosen) < size:
        if repeats:
            chosen.append(checked_words(r, rounds.nudge(repeats.pop(0), space, r.base, tried, r.rng), None))
        else:
            source = deps.candidates
            assert source is not None, "a fallback needs a candidate source"
            first = Option(source.next(r.trials, size)[len(chosen) % size], "tpe")
            chosen.append(_anchored(r, with_support(first, r.base, r.trials, deps.metric, r.knobs), "fallback",
                                    "the Advisor gave too few usable proposals; TPE suggested this one"))
        tried.add(config_key(chosen[-1].config))
    return chosen


PROPOSERS: dict[Proposer, Callable[[Round], Candidate]] = {"hybrid": propose_hybrid, "llm": propose_llm,
                                                           "tpe": propose_tpe}
