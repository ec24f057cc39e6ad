"""Evidence for a change, computed in code from the run's own trials.

Every change the change log shows cites this: where the best trials put
the knob, how each choice of a categorical knob scored, the best trial's
flags, and TPE's rank of the candidate. The Advisor reads the same
evidence when it chooses, and when one of its sentences fails the checks
of `agents.wording` the change log shows a sentence rendered from this
instead, marked as such.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from agents import diagnose, summarize_curve
from agents.diagnoses import remedy
from agents.diagnostics import flags
from agents.formatting import value as fmt
from agents.records import MetricInfo, TrialRecord, scored, val
from agents.wording import move
from lgt.direction import best_first
from tuning_targets import Config, config_changes

# Texts lgt writes in place of an LLM's that failed a check start with this, so a reader can tell.
BY_LGT = "(by lgt, from the evidence)"
# Where a candidate the Advisor is shown came from (`Option.origin`), in words.
Origin = Literal["tpe", "region", "gradient", "advisor"]
ORIGINS: dict[Origin, str] = {"tpe": "TPE's next pick", "region": "from TPE's good region",
                              "gradient": "the Evaluator's gradient applied to the best config",
                              "advisor": "the Advisor's own proposal"}
TOP = 3


def origin_words(origin: object) -> str:
    """A stored option's origin in words; "" for one this version does not know (a study written by another)."""
    return next((words for name, words in ORIGINS.items() if name == origin), "")

EVIDENCE_SHOWN = 2  # knobs per candidate whose evidence the Advisor reads (`option_line`) ...
MOVES_SHOWN = 6  # ... and whose changes it reads; the change log shows them all


def ordinal(n: int) -> str:
    return f"{n}{'th' if 10 <= n % 100 <= 20 else {1: 'st', 2: 'nd', 3: 'rd'}.get(n % 10, 'th')}"


@dataclass
class Option:
    """A candidate config the Advisor may choose, with where it came from and TPE's rating."""

    config: Config
    origin: Origin
    score: float | None = None  # TPE's acquisition value
    rank: int | None = None  # TPE's rank among the round's options, 1 = its favourite
    of: int = 0  # how many options were ranked
    changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # against the best config so far
    support: dict[str, str] = field(default_factory=dict)  # knob: evidence sentence

    def tpe_rating(self) -> str:
        if self.rank is None:
            return ""
        return f"TPE ranks it {ordinal(self.rank)} of {self.of}"

    def to_dict(self) -> dict[str, Any]:
        return {"origin": self.origin, "score": self.score, "rank": self.rank, "of": self.of,
                "changes": {k: [a, b] for k, (a, b) in self.changes.items()}, "support": dict(self.support)}


def knob_support(knob: str, new: Any, trials: Sequence[TrialRecord], metric: MetricInfo,
                 spec: Mapping[str, Any]) -> str:
    """What the run's trials say about `knob` at `new`, with numbers."""
    complete = [t for t in trials if scored(t)]
    if not complete:
        return "no completed trial to compare with yet"
    name = metric["name"]
    if spec.get("type") == "categorical":
        groups: dict[str, list[float]] = {}
        for t in complete:
            groups.setdefault(fmt(t["config"].get(knob)), []).append(val(t))
        parts = [f"{choice} {statistics.fmean(v):.3f} ({len(v)})" for choice, v in
                 best_first(list(groups.items()), metric["direction"], lambda kv: statistics.fmean(kv[1]))]
        untried = "" if fmt(new) in groups else f"; {fmt(new)} not tried yet"
        return f"mean val {name} by {knob}: {', '.join(parts[:4])}{untried}"
    top = best_first(complete, metric["direction"], val)[:TOP]
    values = [float(t["config"][knob]) for t in top if isinstance(t["config"].get(knob), int | float)]
    if not values:
        return f"{knob} is not set in the best trials"
    low, high = min(values), max(values)
    where = "inside" if low <= new <= high else "above" if new > high else "below"
    span = fmt(low) if low == high else f"{fmt(low)} to {fmt(high)}"
    who = "the best trial" if len(top) == 1 else f"the {len(top)} best trials"
    return f"{who} used {knob} {span} ({fmt(new)} is {where} that)"


def best_facts(best: TrialRecord | None, metric: MetricInfo) -> str:
    """The best trial so far in one line: score, curves and raised flags."""
    if best is None:
        return "no completed trial yet"
    raised = flags(diagnose(best, metric))
    return (f"best so far #{best.get('number')}: val {metric['name']} {fmt(best.get('val_metric'))}; "
            f"{summarize_curve(list(best.get('history') or []), metric)}; flags: {', '.join(raised) or 'none'}")


def with_support(option: Option, base: Mapping[str, Any], trials: Sequence[TrialRecord], metric: MetricInfo,
                 knobs: Mapping[str, Mapping[str, Any]]) -> Option:
    option.changes = config_changes(base, option.config)
    option.support = {k: knob_support(k, new, trials, metric, knobs.get(k, {})) for k, (_, new) in
                      option.changes.items()}
    return option


def rank(options: list[Option], scores: Sequence[float]) -> list[Option]:
    """Attach TPE's scores and ranks (1 = highest acquisition)."""
    order = sorted(range(len(options)), key=lambda i: -scores[i])
    for position, i in enumerate(order, start=1):
        options[i].score, options[i].rank, options[i].of = round(float(scores[i]), 3), position, len(options)
    return options


def option_line(index: int, option: Option) -> str:
    """An option as the Advisor reads it: its changes from the best config, origin, TPE's rank, evidence.

    The changes are cut to `MOVES_SHOWN` knobs and the evidence to
    `EVIDENCE_SHOWN`, the knobs where the option leaves what the run has seen
    (a value outside the best trials' range, a choice not tried yet) first:
    reading the prompt is most of an LLM call's time on the embedded model,
    and four of TPE's candidates, each moving ten knobs with a sentence of
    evidence for each, made the Advisor's prompt three times longer than
    everything else in it. The change log still shows every change and
    cites every knob's evidence.
    """
    notable = sorted(option.changes, key=lambda k: not _departs(option.support.get(k, "")))[:MOVES_SHOWN]
    moves = ", ".join(f"{k} {fmt(a)} -> {fmt(b)}" for k, (a, b) in option.changes.items() if k in notable)
    hidden = len(option.changes) - len(notable)
    moves = (moves + (f" and {hidden} smaller change{'s' if hidden > 1 else ''}" if hidden > 0 else "")) or "no change"
    head = f"{index}: {moves} | {ORIGINS[option.origin]}"
    rating = option.tpe_rating()
    shown = sorted(option.support, key=lambda k: not _departs(option.support[k]))[:EVIDENCE_SHOWN]
    evidence = "; ".join(f"{k}: {option.support[k]}" for k in option.support if k in shown)
    more = len(option.support) - len(shown)
    evidence += f" (and {more} more knob{'s' if more > 1 else ''})" if more > 0 and evidence else ""
    return head + (f"; {rating}" if rating else "") + (f"\n   evidence: {evidence}" if evidence else "")


MENU_MOVES = 3  # changes per candidate a menu-mode Advisor reads: its prompt is read every round


def acts_on(option: Option, problems: Sequence[str], knobs: Mapping[str, Mapping[str, Any]], *,
            against: bool = False) -> dict[str, list[str]]:
    """For each of the best trial's `problems`, the option's changes that are the playbook's remedy for it.

    E.g. {"overfitting": ["dropout 0.1 -> 0.3"]}: what a reader (and the
    Advisor) can check against `agents.diagnoses.REMEDIES`. With `against`,
    the changes that move the other way ("epochs 13 -> 2" against a stop
    while still improving), which a sentence naming the remedies must not hide.
    """
    found: dict[str, list[str]] = {}
    for problem in problems:
        for knob, (old, new) in option.changes.items():
            wanted = remedy(problem, knob)
            way = move(old, new, knobs.get(knob, {}).get("choices") if knobs.get(knob, {}).get("type") ==
                       "categorical" else None)
            if wanted is not None and way is not None and (way == {"increase": "up", "decrease": "down"}[wanted]) \
                    != against:
                found.setdefault(problem, []).append(f"{knob} {fmt(old)} -> {fmt(new)}")
    return found


def menu_option_line(option: Option, problems: Sequence[str], knobs: Mapping[str, Mapping[str, Any]]) -> str:
    """An option as a menu-mode Advisor reads it: a few changes, origin, TPE's rank, and the problems it acts on.

    Shorter than `option_line` (no evidence sentences): the embedded model
    reads this every round, and what it needs is which candidate does what.
    """
    notable = sorted(option.changes, key=lambda k: not _departs(option.support.get(k, "")))[:MENU_MOVES]
    moves = ", ".join(f"{k} {fmt(a)} -> {fmt(b)}" for k, (a, b) in option.changes.items() if k in notable)
    hidden = len(option.changes) - len(notable)
    moves = (moves + (f" and {hidden} more" if hidden > 0 else "")) or "no change"
    rating = option.tpe_rating()
    about = [ORIGINS[option.origin], *([rating] if rating else [])]
    acting = acts_on(option, problems, knobs)
    if acting:
        about.append("acts on " + ", ".join(acting))
    return f"{moves} | {'; '.join(about)}"


def _departs(support: str) -> bool:
    """Whether a knob's evidence says the option leaves what the run has seen work."""
    return support.endswith(("above that)", "below that)", "not tried yet"))


def reason_for(knob: str, option: Option | None, support: str) -> str:
    """A reason rendered from the evidence, for a knob whose LLM reason failed a check (or had none)."""
    origin = f"{ORIGINS[option.origin]}; " if option else ""
    rating = f"{option.tpe_rating()}; " if option and option.rank else ""
    return f"{BY_LGT} {origin}{rating}{support}"


def effect_for(option: Option | None, best: TrialRecord | None, metric: MetricInfo) -> str:
    """An expected effect rendered from the evidence."""
    target = f"beat the best val {metric['name']} so far ({fmt(best.get('val_metric'))})" if best else \
        f"set a first val {metric['name']}"
    rating = f", as {option.tpe_rating()}" if option and option.rank else ""
    return f"{BY_LGT} expected to {target}{rating}"
