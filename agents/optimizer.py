"""The Optimizer: rewrites the Advisor's standing guidance from what worked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agents import render, scoring
from agents.base import Agent, hidden, lettered
from agents.menus import rule_line, rules_menu
from agents.prompt import load_prompt
from agents.records import KnobSpec, MetricInfo, TrialRecord
from agents.schemas import Guidance

EARLIER_VERSIONS = 2
RULES = 3  # menu mode: rules picked at most


class Optimizer(Agent):
    """Turns the session's record of proposals and outcomes into a few standing rules."""

    name = "optimizer"
    max_tokens = 170  # the guidance and one sentence why, at their schema caps

    def rewrite(self, guidance_history: Sequence[str], record: Sequence[TrialRecord], metric: MetricInfo,
                data: Mapping[str, Any] | None = None, space: Sequence[KnobSpec] = (), *, order_seed: int = 0,
                priors: Mapping[str, Any] | None = None) -> Guidance:
        """New guidance for the Advisor.

        Args:
            guidance_history: Guidance versions so far, oldest first; the last is current.
            record: All trials, oldest first, with their ``changes`` and ``reasons``.
            metric: Name and direction of the validation metric.
            data: The data profile (`tuning_targets.Target.data_profile()`), if known.
            space: The knob specs; menu mode picks rules on these knobs only.
            order_seed, priors: Menu mode: the menu's display order and the run's record of the
                model's position bias (`agents.scoring`).

        Raises:
            AgentFailure: No valid guidance after one retry, or the server failed.
        """
        current = guidance_history[-1] if guidance_history else "(none yet)"
        previous = guidance_history[-1 - EARLIER_VERSIONS : -1]
        if self.menu:
            return self._picked_rules(space, current, record, metric, data, order_seed, priors or {})
        return self._ask(
            Guidance,
            {
                "task": render.task(metric),
                "data": render.data(data),
                "guidance": current,
                "previous": "\n".join(f"- {g}" for g in previous) or "(none)",
                "record": render.outcomes(record, metric),
            },
        )

    def _picked_rules(self, space: Sequence[KnobSpec], current: str, record: Sequence[TrialRecord],
                      metric: MetricInfo, data: Mapping[str, Any] | None, order_seed: int,
                      priors: Mapping[str, Any]) -> Guidance:
        """Menu mode: up to `RULES` rules read from the model's probabilities over a menu the record backs.

        The menu (`agents.menus.rules_menu`) is shown in an order shuffled by
        `order_seed`; the model's position prior (`priors`) is divided out.
        Code writes the guidance from the picks (`graphs.words.checked_rules`).
        """
        menu = rules_menu(space, record, metric)
        if not menu:
            return Guidance(guidance="", reason_for_change="", rules=[])
        order = scoring.shuffled(len(menu), order_seed)
        template = load_prompt("optimizer_menu")
        values = {"task": render.task(metric), "data": render.data(data), "knobs": render.knob_names(space),
                  "guidance": current, "record": render.outcomes(record, metric, most=3)}
        read, _ = self._read_pick(template.render(**values, rules=lettered([rule_line(r) for r in menu], order)),
                               lambda: template.render(**values, rules=hidden(len(menu))), order,
                               scoring.prior(priors, len(menu), "rules"), '{"rules": ["', take=min(RULES, len(menu)))
        chosen = read.chosen[:1] + [i for i in read.chosen[1:] if read.preference[i] >= 1 / len(menu)]
        return Guidance(guidance="", reason_for_change="", rules=[menu[i] for i in chosen],
                        scores=read.record("rules") | {"menu": menu})
