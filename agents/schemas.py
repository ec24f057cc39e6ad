"""What each agent must reply, as pydantic models.

The same classes serve two ends: their JSON schema is sent to the server so
that constrained decoding (llama.cpp grammars, OpenAI structured outputs) can
only emit the right shape, and pydantic validates whatever comes back, since
not every server enforces the schema.

String lengths are capped in the JSON schema (``json_schema_extra``) so a
grammar stops a tiny model from rambling, and each cap asks for no more text
than the change log shows: a reason is one sentence, an analysis two. A
strong model that writes one sentence too many is not rejected for it; its
text is cut to the cap when the reply is parsed (`agents.replies.cap_texts`),
so no reply can bloat a prompt, a file or the storage.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, Field, create_model, field_validator
from pydantic.json_schema import SkipJsonSchema

V = TypeVar("V", bound=BaseModel)

# One above what the prompts ask for: a model that overshoots by one is not sent
# back for it, while a grammar still bounds a tiny model's output.
MAX_CHANGES = 4  # the prompts ask for one to three
MAX_STEPS = 3  # parsing accepts one more than the prompts ask for ...
ASKED_STEPS = 2  # ... while the grammar lets a model write only the two the change log shows
# Generation under a grammar runs at ~50 tokens/s on the embedded model, so every character a
# schema allows costs time: these are what one sentence (two for an analysis) needs in the
# change log, and no more (issue 11: LLM seconds per round).
REASON_CHARS = 110  # one sentence
EFFECT_CHARS = 90  # one short sentence
ANALYSIS_CHARS = 140  # two short sentences
GUIDANCE_CHARS = 300  # a few one-line rules
NAME_CHARS = 40  # a knob name or a categorical value
MAX_ADJUST = 2  # knobs the Advisor may adjust on a chosen candidate


def _text(description: str, max_chars: int) -> Any:
    return Field(description=description, json_schema_extra={"maxLength": max_chars})


class Change(BaseModel):
    """One knob set to one value, with the engineer's reason.

    In menu mode (`--words menu`) the model gives a ``cause`` from
    `agents.diagnoses.DIAGNOSES` instead of a ``reason``, and code renders
    the reason from it and the numbers.
    """

    knob: str = _text("name of a knob from the search space", NAME_CHARS)
    value: str | float | int | bool = Field(description="the new value, inside the knob's range")
    reason: str = _text("why this value, citing the evidence", REASON_CHARS)
    cause: SkipJsonSchema[str | None] = None


class Proposal(BaseModel):
    """The Advisor's next configuration change, applied to the best configuration so far."""

    changes: list[Change] = Field(min_length=1, max_length=MAX_CHANGES)
    expected_effect: str = _text("what should happen to the validation metric and curves", EFFECT_CHARS)


class Choice(BaseModel):
    """The Advisor's pick among code's candidates (hybrid proposer), at most two knobs adjusted, and why.

    In menu mode the pick is read from the model's probabilities over the
    candidates (`agents.advisor.Advisor.pick`): ``reason`` and
    ``expected_effect`` stay empty, ``cause`` names what the pick acts on,
    and ``scores`` keeps how the model rated each candidate.
    """

    pick: int = Field(description="the number of the chosen candidate")
    adjust: list[Change] = Field(default_factory=list, max_length=MAX_ADJUST)
    reason: str = _text("why this candidate, one sentence citing its evidence", REASON_CHARS)
    expected_effect: str = _text("what should happen to the validation metric", EFFECT_CHARS)
    cause: SkipJsonSchema[str | None] = None
    scores: SkipJsonSchema[dict[str, Any] | None] = None


class ProposalBatch(BaseModel):
    """Several proposals for trials that run in parallel (reserved for distributed rounds)."""

    proposals: list[Proposal] = Field(min_length=1)


class GradientStep(BaseModel):
    """One component of the textual gradient: move this knob that way."""

    knob: str = _text("name of a knob from the search space", NAME_CHARS)
    direction: str = Field(
        description='"increase", "decrease" or "switch to <value>"',
        pattern=r"^(increase|decrease|switch to .+)$",
        json_schema_extra={"maxLength": NAME_CHARS + 10},
    )
    reason: str = _text("the evidence in the curves or the comparison", REASON_CHARS)
    # None in menu mode only (a pick has no confidence); the schema sent to a model still asks for a number.
    confidence: Annotated[float, Field(ge=0.0, le=1.0)] | SkipJsonSchema[None] = Field(
        description="0 = a guess, 1 = certain")
    cause: SkipJsonSchema[str | None] = None  # menu mode: the diagnosis the step acts on

    @field_validator("confidence", mode="before")
    @classmethod
    def _percent_to_fraction(cls, value: object) -> object:
        """Small models often write 80 for 0.8; grammars cannot forbid it, so read it kindly."""
        if isinstance(value, int | float) and not isinstance(value, bool) and 1 < value <= 100:
            return value / 100
        return value


class Verdict(BaseModel):
    """The Evaluator's judgement of the newest trial against the best so far.

    ``is_new_best`` and ``correction`` are set by code, never asked of the
    model (hence absent from the JSON schema): whether a trial is a new best
    is arithmetic, and ``correction`` notes what code had to overrule or
    replace.
    """

    is_new_best: SkipJsonSchema[bool] = False
    analysis: str = _text("what the curves and the comparison show", ANALYSIS_CHARS)
    gradient: list[GradientStep] = Field(max_length=MAX_STEPS, json_schema_extra={"maxItems": ASKED_STEPS})
    correction: SkipJsonSchema[str | None] = None
    outcome: SkipJsonSchema[str | None] = None  # menu mode: the picks the analysis is rendered from
    diagnosis: SkipJsonSchema[str | None] = None
    scores: SkipJsonSchema[dict[str, Any] | None] = None  # menu mode: how the steps were read (`agents.scoring`)


class EpochVerdict(BaseModel):
    """The Evaluator's reading of one run's curve after an epoch, for in-run adaptation.

    A healthy verdict means carry on unchanged, and the Advisor is not asked.
    ``correction`` is set by code only: it says why ``healthy`` was overruled
    by the code-computed alarms (a 135M model may call a diverging curve fine).
    """

    healthy: bool = Field(description="true when training progresses well and nothing should change")
    analysis: str = _text("what the curve so far shows", ANALYSIS_CHARS)
    gradient: list[GradientStep] = Field(max_length=MAX_STEPS)
    correction: SkipJsonSchema[str | None] = None
    diagnosis: SkipJsonSchema[str | None] = None  # menu mode


class EpochProposal(BaseModel):
    """The Advisor's changes to dynamic knobs for the next epoch; an empty list means no change."""

    changes: list[Change] = Field(max_length=MAX_CHANGES)
    expected_effect: str = _text("what should happen in the next epoch", EFFECT_CHARS)


class Guidance(BaseModel):
    """The Optimizer's rewrite of the Advisor's standing guidance."""

    guidance: str = _text("standing advice for the Advisor, a few short rules", GUIDANCE_CHARS)
    reason_for_change: str = _text("what in the record made you change it", REASON_CHARS)
    rules: SkipJsonSchema[list[dict[str, Any]] | None] = None  # menu mode: the rules picked, rendered by code
    scores: SkipJsonSchema[dict[str, Any] | None] = None  # menu mode: how they were read (`agents.scoring`)


@lru_cache(maxsize=32)
def proposal_schema(knobs: tuple[str, ...]) -> type[Proposal]:
    """A `Proposal` whose JSON schema lets ``knob`` name only one of ``knobs``.

    With constrained decoding a tiny model then cannot invent knob names; the
    class subclasses `Proposal`, so callers keep one type.
    """
    if not knobs:
        raise ValueError("the search space has no knobs")
    # The enum constrains decoding on servers that honour the schema, but parsing
    # accepts any name: the graph drops an unknown knob and tells the Advisor, so
    # one bad knob does not cost the whole proposal.
    knob_field = Field(description="a knob name", json_schema_extra={"enum": list(knobs)})
    change = create_model("Change", __base__=Change, knob=(str, knob_field))
    changes: Any = list[change]  # type: ignore[valid-type]  # a class built at run time
    return create_model("Proposal", __base__=Proposal, changes=(changes, Field(min_length=1, max_length=MAX_CHANGES)))


@lru_cache(maxsize=32)
def choice_schema(knobs: tuple[str, ...], size: int) -> type[Choice]:
    """A `Choice` whose ``pick`` can only be one of ``size`` candidates and whose adjustments name only ``knobs``."""
    if size < 1:
        raise ValueError("there must be at least one candidate to choose from")
    picks: Any = Literal[tuple(range(size))]  # an enum: a grammar lets a tiny model write only a listed number
    change = create_model("Change", __base__=Change,
                          knob=(str, Field(description="a knob name", json_schema_extra={"enum": list(knobs)})))
    changes: Any = list[change]  # type: ignore[valid-type]  # a class built at run time
    return create_model("Choice", __base__=Choice, pick=(picks, Field(description="the chosen candidate's number")),
                        adjust=(changes, Field(default_factory=list, max_length=MAX_ADJUST)))


@lru_cache(maxsize=32)
def epoch_proposal_schema(knobs: tuple[str, ...]) -> type[EpochProposal]:
    """An `EpochProposal` whose JSON schema names only ``knobs`` (pass the dynamic ones).

    As in `proposal_schema`, parsing accepts any name: a structural knob that
    slips through a server without grammars is refused by the adaptation
    loop with its reason, which the Advisor then reads.
    """
    if not knobs:
        raise ValueError("no dynamic knobs to change")
    knob_field = Field(description="a knob that may change inside a run", json_schema_extra={"enum": list(knobs)})
    change = create_model("Change", __base__=Change, knob=(str, knob_field))
    changes: Any = list[change]  # type: ignore[valid-type]  # a class built at run time
    return create_model("EpochProposal", __base__=EpochProposal, changes=(changes, Field(max_length=MAX_CHANGES)))


@lru_cache(maxsize=32)
def epoch_verdict_schema(knobs: tuple[str, ...]) -> type[EpochVerdict]:
    """An `EpochVerdict` whose gradient may only name ``knobs`` (the dynamic ones)."""
    return _with_gradient(EpochVerdict, knobs)


@lru_cache(maxsize=32)
def verdict_schema(knobs: tuple[str, ...]) -> type[Verdict]:
    """A `Verdict` whose gradient steps may only name one of ``knobs`` (see `proposal_schema`)."""
    return _with_gradient(Verdict, knobs)


def _with_gradient(base: type[V], knobs: tuple[str, ...]) -> type[V]:
    """`base` with a ``gradient`` whose steps can only name ``knobs``."""
    step = create_model(
        "GradientStep", __base__=GradientStep, knob=(_knob_type(knobs), Field(description="a knob name"))
    )
    steps: Any = list[step]  # type: ignore[valid-type]  # a class built at run time
    return create_model(base.__name__, __base__=base,
                        gradient=(steps, Field(max_length=MAX_STEPS, json_schema_extra={"maxItems": ASKED_STEPS})))


def _one_of(values: tuple[Any, ...]) -> Any:
    """A `Literal` of values known at run time: an enum in the JSON schema, so a grammar allows only these."""
    return Literal[values]


def _knob_type(knobs: tuple[str, ...]) -> Any:
    if not knobs:
        raise ValueError("the search space has no knobs")
    return Literal[knobs]


# --- menu mode: closed lists only, no free text -------------------------------------------------------------------

def directions(space: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """The gradient directions a menu offers: up, down, or a switch to a choice of an unordered categorical knob."""
    switches = sorted({f"switch to {c}" for k in space if k.get("type") == "categorical" and not k.get("ordered")
                       for c in k.get("choices") or () if len(f"switch to {c}") <= NAME_CHARS + 10})
    return ("increase", "decrease", *switches)


def _menu_change(knobs: tuple[str, ...], causes: tuple[str, ...], name: str) -> Any:
    fields: dict[str, Any] = {"knob": (_knob_type(knobs), Field(description="a knob name")),
                              "value": (str | float | int | bool, Field(description="the new value, inside its range"))}
    if causes:
        fields["cause"] = (_one_of(causes), Field(description="the problem this change acts on"))
    return create_model(name, **fields)


@lru_cache(maxsize=64)
def menu_proposal_schema(knobs: tuple[str, ...], causes: tuple[str, ...], *, epoch: bool = False) -> type[BaseModel]:
    """Menu-mode changes: (knob, value, cause) each; between trials one to three, inside a run zero to two."""
    change = _menu_change(knobs, causes, "MenuChange")
    low, high = (0, 2) if epoch else (1, 3)
    return create_model("MenuEpochProposal" if epoch else "MenuProposal",
                        changes=(list[change], Field(min_length=low, max_length=high)))  # type: ignore[valid-type]


@lru_cache(maxsize=64)
def menu_batch_schema(knobs: tuple[str, ...], causes: tuple[str, ...], size: int) -> type[BaseModel]:
    """Menu-mode proposals for a parallel round: one to `size` lists of (knob, value, cause)."""
    change = _menu_change(knobs, causes, "MenuChange")
    proposal = create_model("MenuBatchItem", changes=(list[change], Field(min_length=1, max_length=3)))  # type: ignore[valid-type]
    return create_model("MenuBatch", proposals=(list[proposal], Field(min_length=1, max_length=size)))  # type: ignore[valid-type]


@lru_cache(maxsize=64)
def menu_epoch_verdict_schema(knobs: tuple[str, ...], moves: tuple[str, ...], problems: tuple[str, ...],
                              causes: tuple[str, ...]) -> type[BaseModel]:
    """The in-run Evaluator's picks: healthy or not, the main problem, up to two steps on dynamic knobs."""
    fields: dict[str, Any] = {"healthy": (bool, Field(description="true when nothing should change"))}
    if len(problems) > 1:
        fields["diagnosis"] = (_one_of(problems), Field(description="the main problem of the curve"))
    if causes:
        step = create_model("MenuStep", knob=(_knob_type(knobs), Field(description="a knob name")),
                            direction=(_one_of(moves), Field(description="which way to move it next")),
                            cause=(_one_of(causes), Field(description="the problem this step acts on")))
        fields["gradient"] = (list[step], Field(max_length=ASKED_STEPS))  # type: ignore[valid-type]
    return create_model("MenuEpochVerdict", **fields)


@lru_cache(maxsize=64)
def letters_schema(labels: tuple[str, ...], take: int) -> type[BaseModel]:
    """A menu's letters as an answer to write (endpoints that cannot score): one to `take` of `labels`."""
    picks: Any = list[_one_of(labels)]  # type: ignore[misc]  # a type built at run time
    return create_model("MenuLetters", picks=(picks, Field(min_length=1, max_length=take)))
