"""Checks on the words an LLM writes, before anything shows or reuses them.

An LLM's numbers are validated against the search space; its words are
checked here, in code, the same way: a reason must be words (not symbols or
bare numbers) of a sensible length, may name only knobs that exist, and a
direction it gives a knob must agree with the change actually made ("lower
the learning rate" beside 0.01 -> 0.1 fails). A categorical knob is
switched, never increased or decreased, unless its choices are ordered.

Each check returns the problems it found, in words; an empty list means the
text stands. What to do with a failing text (replace it with one rendered
from the evidence, refuse guidance) is the caller's decision.

The direction check only reads a direction word next to a knob's name
("lower the learning rate", "dropout higher"), so "more dropout to reduce
overfitting" is not read as asking to reduce dropout: a good model's
sentence must never be thrown away by a check that misreads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from agents.formatting import value as _v

UP = ("increase", "increasing", "increased", "raise", "raising", "raised", "higher", "larger", "bigger", "more",
      "up", "boost", "boosting", "grow", "growing", "add", "adding", "longer", "wider", "deeper", "stronger")
DOWN = ("decrease", "decreasing", "decreased", "lower", "lowering", "lowered", "reduce", "reducing", "reduced",
        "smaller", "less", "fewer", "down", "cut", "cutting", "drop", "dropping", "shrink", "shrinking", "shorter",
        "narrower", "shallower", "weaker")
# Words that may stand between a knob's name and the direction given it: "dropout should go down".
FILLERS = r"(?:be|should|must|could|would|will|can|need|needs|to|go|goes|get|gets|even|much|a|bit|slightly)"
# Knob names as people write them.
ALIASES = {"learning_rate": ("lr",)}
# snake_case names a good text may use that are not knobs: the record's own fields.
NOT_KNOBS = {"train_loss", "val_loss", "val_metric", "val_accuracy", "val_mae", "test_metric", "best_epoch"}
MIN_CHARS = 20
MIN_WORDS = 4  # words other than knob names and numbers: "more than one" says nothing
WORD_SHARE = 0.6  # letters among the non-space characters
SMALL_COUNTS = 3  # integers up to this ("two knobs", "1 epoch") need no grounding
_NUMBER = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?%?")


def _spoken(knob: str) -> list[str]:
    """Ways a text may name a knob: learning_rate, learning rate, learning-rate, lr."""
    words = knob.replace("_", " ")
    return [knob, words, knob.replace("_", "-"), *ALIASES.get(knob, ())]


def word_problems(text: str, *, max_chars: int, knobs: Sequence[str] = (), echoes: Sequence[str] = ()) -> list[str]:
    """Problems with `text` as prose: too short or long, too few words, mostly symbols or numbers.

    Knob names and numbers are not words: "learning_rate=0.15; epochs:17"
    is a config dump, not a rule. A text that only repeats one of `echoes`
    (the prompt's own goal line, say) says nothing either.
    """
    stripped = " ".join(text.split())
    if len(stripped) < MIN_CHARS:
        return [f"too short ({len(stripped)} characters)"]
    if len(stripped) > max_chars:
        return [f"too long ({len(stripped)} characters, at most {max_chars})"]
    prose = re.sub(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b", " ", stripped)  # identifiers are not words
    words = [w for w in re.findall(r"[A-Za-z]{2,}", prose) if w not in knobs]
    if len(words) < MIN_WORDS:
        return [f"only {len(words)} word(s) besides knob names and numbers"]
    plain = " ".join(re.findall(r"[a-z0-9]+", stripped.lower()))
    for echo in echoes:
        if plain and plain == " ".join(re.findall(r"[a-z0-9]+", echo.lower())):
            return ["only repeats the prompt"]
    visible = [c for c in stripped if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters < WORD_SHARE * len(visible):
        return ["mostly symbols or numbers, not words"]
    return []


def one_sentence(text: str) -> list[str]:
    """Problems for a text that must be one sentence: line breaks, or braces and bars copied from a prompt or JSON."""
    problems = []
    if "\n" in text.strip():
        problems.append("more than one line")
    if any(c in text for c in "{}|") or "by lgt" in text.lower():
        problems.append("copies the prompt or JSON, not a sentence")
    return problems


def numbers(text: str) -> list[str]:
    """The numbers a text cites, as written ("0.745", "2%", "1e-3")."""
    return _NUMBER.findall(text)


def grounding(*sources: Any) -> set[float]:
    """Every number found in `sources` (texts, numbers, or nested lists and dicts of them)."""
    found: set[float] = set()
    stack = list(sources)
    while stack:
        item = stack.pop()
        if isinstance(item, bool) or item is None:
            continue
        if isinstance(item, int | float):
            found.add(float(item))
        elif isinstance(item, str):
            found.update(_value(n) for n in numbers(item))
        elif isinstance(item, Mapping):
            stack.extend(item.values())
        elif isinstance(item, Sequence):
            stack.extend(item)
    return found


def _value(token: str) -> float:
    return float(token.rstrip("%"))


def ungrounded(text: str, facts: set[float]) -> list[str]:
    """Problems: numbers `text` cites that appear nowhere in the evidence the agent was shown.

    A cited number matches a fact when the fact, rounded to the decimals the
    text wrote, is that number ("0.745" for 0.74537); a percentage also
    matches its fraction ("4%" for 0.04). Small counts need no fact.
    """
    problems = []
    for token in numbers(text):
        cited = _value(token)
        if "." not in token and "e" not in token.lower() and not token.endswith("%") and abs(cited) <= SMALL_COUNTS:
            continue
        decimals = len(token.rstrip("%").split(".")[1]) if "." in token else 0
        wanted = [cited, cited / 100] if token.endswith("%") else [cited]
        if not any(_matches(w, f, decimals + (2 if token.endswith("%") else 0)) for w in wanted for f in facts):
            problems.append(f"cites {token}, a number not in the evidence")
    return problems


def _matches(cited: float, fact: float, decimals: int) -> bool:
    if round(fact, decimals) == round(cited, decimals):
        return True
    return fact != 0 and abs(cited - fact) <= 1e-3 * abs(fact)  # scientific or significant-digit formats


def out_of_range(text: str, knobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Problems: values the text gives a numeric knob ("momentum: 1", "lr=0.5") outside the knob's range."""
    problems = []
    for name, spec in knobs.items():
        low, high = spec.get("low"), spec.get("high")
        if low is None or high is None:
            continue
        for spoken in _spoken(name):
            pattern = rf"\b{re.escape(spoken)}\s*(?:=|:|to|of|at|is)?\s*({_NUMBER.pattern})"
            for match in re.finditer(pattern, text, flags=re.IGNORECASE):
                given = _value(match.group(1))
                if not float(low) <= given <= float(high):
                    problems.append(f"gives {name} {match.group(1)}, outside its range [{low}, {high}]")
    return sorted(set(problems))


def unknown_knobs(text: str, knobs: Sequence[str]) -> list[str]:
    """Problems: snake_case names in `text` that are not knobs of the space."""
    known = set(knobs) | NOT_KNOBS
    found = sorted({n for n in re.findall(r"\b[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b", text)
                    if n.lower() not in known})
    return [f"names a knob that does not exist: {n}" for n in found]


def _direction_of(text: str, knob: str) -> set[str]:
    """The directions `text` gives `knob`: a direction word right before or after one of its names."""
    lowered = " ".join(text.lower().split())
    found: set[str] = set()
    for name in _spoken(knob):
        name_re = re.escape(name)
        for words, way in ((UP, "up"), (DOWN, "down")):
            verbs = "|".join(words)
            before = rf"\b(?:{verbs})\s+(?:the\s+|its\s+|a\s+)?{name_re}\b"
            after = rf"\b{name_re}\s+(?:{FILLERS}\s+)*(?:{verbs})\b"
            if re.search(before, lowered) or re.search(after, lowered):
                found.add(way)
    return found


def move(old: Any, new: Any, choices: Sequence[Any] | None = None) -> str | None:
    """How a knob moved: "up", "down", or None (unchanged, or a switch between unordered choices)."""
    if choices is not None:
        if old in choices and new in choices and old != new:
            return "up" if list(choices).index(new) > list(choices).index(old) else "down"
        return None
    if isinstance(old, bool) or isinstance(new, bool) or not isinstance(old, int | float) \
            or not isinstance(new, int | float) or old == new:
        return None
    return "up" if new > old else "down"


def contradictions(text: str, changes: Mapping[str, tuple[Any, Any]],
                   knobs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Problems: `text` moves a knob one way while the change moves it the other, or ups/downs an unordered one.

    `changes` maps knob to (old, new); `knobs` maps name to its spec (``type``,
    and ``choices`` / ``ordered`` for categorical ones).
    """
    problems = []
    for knob, (old, new) in changes.items():
        said = _direction_of(text, knob)
        if not said:
            continue
        spec = knobs.get(knob, {})
        if spec.get("type") == "categorical" and not spec.get("ordered"):
            problems.append(f"says to move {knob} {'/'.join(sorted(said))}, but {knob} is categorical: it is "
                            f"switched, not increased or decreased")
            continue
        actual = move(old, new, spec.get("choices") if spec.get("type") == "categorical" else None)
        if actual is not None and actual not in said:
            word = "increase" if actual == "down" else "decrease"
            problems.append(f"says {word} {knob}, but {knob} went {_v(old)} -> {_v(new)}")
    return problems


# What an analysis says of the newest trial's outcome, in words a small model uses.
_GAIN = re.compile(r"\b(better|more accurate|improv\w*|outperform\w*|new best|best (?:one|outcome|result)|"
                   r"(?:big|great) (?:hit|success)|higher accuracy|gains?)\b")
_LOSS = re.compile(r"\b(worse|less accurate|lower accuracy|declin\w*|dropped|no gain|not better|no better)\b")
_NEGATION = re.compile(r"\b(not|no|n't|never|without|nor|hardly)\W+(?:\w+\W+){0,2}$")
_COMPARED = re.compile(r"\b(than (?:before|the (?:last|previous|best))|previous (?:one|trial|best)|the last one)\b")


def outcome_claims(text: str, *, new_best: bool, first: bool) -> list[str]:
    """Problems: the analysis calls the newest trial a gain when code found none, or a loss when it is the new best.

    Whether a trial is a new best is arithmetic (`Verdict.is_new_best`); a
    sentence that says otherwise is false whatever else it says. The first
    trial has nothing before it, so any comparison with "before" is too.
    """
    lowered = " ".join(text.lower().split())
    problems = []
    if first and _COMPARED.search(lowered):
        problems.append("compares the first trial with one before it; there is none")
    for pattern, wrong, says in ((_GAIN, not new_best, "a gain"), (_LOSS, new_best, "a loss")):
        if not wrong:
            continue
        for found in pattern.finditer(lowered):
            if not _NEGATION.search(lowered[:found.start()]):
                problems.append(f"calls the newest trial {says} ({found.group(0)!r}), but it is "
                                f"{'the new best' if new_best else 'not better than the best so far'}")
                break
    return problems


# Filler: the goal restated ("maximize val accuracy"), praise, chat, tautology. A sentence with one of these was
# not written to inform, whatever else it names (issue 18 quotes real ones from committed change logs).
_FILLER = re.compile("|".join((  # noqa: FLY002 - one pattern per line reads better than one long f-string
    r"\bmaxim(?:i[sz]e[sd]?|i[sz]ing|i[sz]ation|ally|ing|a)\b",  # "maximize val accuracy", "maximally improve"
    (r"\b(?:minimi[sz](?:e[sd]?|ing)|optimi[sz](?:e[sd]?|ing))\b(?:\s+\w+){0,3}?\s+(?:val(?:idation)?\s+)?"
     r"(?:accuracy|mae|metric|score|results?|performance|value|tuning|hyperparameters?|configurations?)\b"),
    r"\boptimal (?:one|configuration|config|choice|results?|performance|way|to)\b",
    r"\bnext best (?:configuration|config|one)\b",
    r"\b(?:improve|increase|boost|enhance)s? (?:the |your |our |its )?(?:results?|performance|the last one)\b",
    r"\b(?:great|good|nice) way\b", r"\ba lot of work\b", r"\bi'?m going to\b", r"\bi will\b", r"\bwill help you\b",
    r"\byour (?:data|model|analysis)\b", r"\bgives? you\b", r"\bbest of it\b", r"\bsatisf\w* (?:the )?\w* ?problem\b",
    r"\b(?:newest|new|latest|last) (?:trial|one|data ?set)(?:'s)? is (?:the|a) (?:newest|new|latest|last|great)\b",
    r"\bdata ?sets? .*\b(?:released|updated)\b",
)), re.IGNORECASE)
# What a reader can observe: a diagnosis, or a curve's or metric's movement, or an epoch of it.
_DIAGNOSIS_WORDS = re.compile(
    r"\b(?:over-?fit\w*|under-?fit\w*|plateau\w*|diverg\w*|unstable|instabilit\w*|oscillat\w*|converg\w*|stall\w*|"
    r"flatten\w*|spik\w*|explod\w*|nan|saturat\w*|nois\w*|generali[sz]\w*|memori[sz]\w*|gap)\b", re.IGNORECASE)
_CURVE_TERMS = re.compile(r"\b(?:loss|losses|accuracy|mae|error|r2|metric|score|curves?)\b", re.IGNORECASE)
_MOVED = re.compile(
    r"\b(?:rose|ris(?:es|ing|en)|climb\w*|fell|fall(?:s|ing|en)|dropp\w*|drops|declin\w*|improv(?:ed|ing)|"
    r"worsen\w*|increas(?:ed|ing)|decreas(?:ed|ing)|jump\w*|went|kept|still|peak\w*|stopp\w*|stuck|gain\w*|"
    r"lost|higher|lower|better|worse|reached|ended|moved|barely|settl\w*|recover\w*|cut|clos\w*|widen\w*|"
    r"narrow\w*|steadi\w*|stayed|remained|below|above)\b", re.IGNORECASE)
_EPOCH_MENTION = re.compile(r"\b(?:epochs? \d+|\d+ epochs?|(?:best|last|final|first|early|later) epochs?)\b",
                            re.IGNORECASE)


def says_nothing(text: str, knobs: Sequence[str]) -> list[str]:
    """Problems: `text` is filler, or names no knob of the run and nothing observable.

    Observable: a diagnosis (overfitting, a plateau, divergence, ...), a
    curve's or metric's movement ("val loss flattened", "accuracy 0.93"),
    an epoch of it. A sentence that passes every other check can still say
    nothing ("The newest trial is the newest one"; "maximize val accuracy
    by switching to the next best configuration"): such text is refused
    and replaced like any failing one.
    """
    lowered = " ".join(text.split())
    filler = _FILLER.search(lowered)
    if filler:
        return [f"filler ({filler.group(0)!r}), not evidence"]
    if any(re.search(rf"\b{re.escape(name)}(?:s|es)?\b", lowered, re.IGNORECASE)
           for knob in knobs for name in _spoken(knob)):  # "learning rates" names the learning rate too
        return []
    if _DIAGNOSIS_WORDS.search(lowered) or _EPOCH_MENTION.search(lowered):
        return []
    if _CURVE_TERMS.search(lowered) and (_MOVED.search(lowered) or numbers(lowered)):
        return []
    return ["names no knob and nothing observable (a diagnosis, a curve's movement, a metric's change)"]


# Diagnoses a free text may claim of the newest trial, as `agents.diagnostics.flags` names them.
_CLAIMS = {"overfitting": r"over-?fit\w*", "diverged": r"diverg\w*|explod\w*", "plateau": r"plateau\w*",
           "underfitting": r"under-?fit\w*", "unstable": r"unstable|instabilit\w*|oscillat\w*"}


def diagnosis_claims(text: str, raised: Sequence[str]) -> list[str]:
    """Problems: `text` says the trial shows a diagnosis that the code-computed flags (`raised`) do not.

    "no sign of overfitting" is not a claim (a negation before it).
    """
    lowered = " ".join(text.lower().split())
    problems = []
    for diagnosis, pattern in _CLAIMS.items():
        if diagnosis in raised:
            continue
        for found in re.finditer(rf"\b(?:{pattern})\b", lowered):
            if not _NEGATION.search(lowered[:found.start()]):
                problems.append(f"says {found.group(0)!r}, but the code-computed flags show no {diagnosis}")
                break
    return problems


def check_reason(text: str, changes: Mapping[str, tuple[Any, Any]], knobs: Mapping[str, Mapping[str, Any]],
                 *, max_chars: int, facts: set[float] | None = None, echoes: Sequence[str] = ()) -> list[str]:
    """Every check a reason (or an expected effect) must pass; `facts`: the numbers it may cite (None: any)."""
    return [*word_problems(text, max_chars=max_chars, knobs=list(knobs), echoes=echoes), *one_sentence(text),
            *says_nothing(text, list(knobs)),
            *unknown_knobs(text, list(knobs)), *contradictions(text, changes, knobs),
            *([] if facts is None else ungrounded(text, facts | grounding(*changes.values()))),
            *out_of_range(text, knobs)]


def check_step(knob: str, direction: str, reason: str, knobs: Mapping[str, Mapping[str, Any]],
               *, max_chars: int, facts: set[float] | None = None,
               echoes: Sequence[str] = ()) -> tuple[list[str], list[str]]:
    """(problems with the step itself, problems with its reason) for one textual-gradient step.

    A step whose knob does not exist, or that increases or decreases an
    unordered categorical knob, or switches to a value that is not a
    choice, is wrong in itself and must be dropped; a bad reason can be
    replaced.
    """
    spec = knobs.get(knob)
    if spec is None:
        return [f"{knob} is not a knob"], []
    step: list[str] = []
    categorical = spec.get("type") == "categorical"
    if direction in ("increase", "decrease") and categorical and not spec.get("ordered"):
        step.append(f"{knob} is categorical: it is switched to a value, never {direction}d")
    if direction.startswith("switch to "):
        target = direction.removeprefix("switch to ").strip().strip('"')
        if not categorical:
            step.append(f"{knob} is numeric: it is increased or decreased, not switched")
        elif target.lower() not in {str(c).lower() for c in spec.get("choices") or ()}:
            step.append(f"{target!r} is not a choice of {knob}")
    said = _direction_of(reason, knob)
    way = {"increase": "up", "decrease": "down"}.get(direction)
    reason_problems = [*word_problems(reason, max_chars=max_chars, knobs=list(knobs), echoes=echoes), *one_sentence(reason),
                       *says_nothing(reason, list(knobs)), *unknown_knobs(reason, list(knobs)), *out_of_range(reason, knobs),
                       *([] if facts is None else ungrounded(reason, facts))]
    if way and said and way not in said:
        reason_problems.append(f"its reason moves {knob} the other way from '{direction}'")
    return step, reason_problems


def check_guidance(text: str, knobs: Mapping[str, Mapping[str, Any]], *, max_chars: int) -> list[str]:
    """Guidance must be words (each rule a line), name only knobs that exist, and keep their values in range."""
    copied = ["copies the prompt or JSON, not rules"] if any(c in text for c in "{}|") else []
    return [*word_problems(text, max_chars=max_chars, knobs=list(knobs)), *copied, *says_nothing(text, list(knobs)),
            *unknown_knobs(text, list(knobs)), *out_of_range(text, knobs)]

