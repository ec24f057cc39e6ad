"""TPE's candidates for the LGT agents: the code that proposes, so the LLM only has to choose.

`TPECandidates` keeps an in-memory Optuna study that mirrors the run, told
every trial as what actually ran, with the very sampler the `tpe` baseline
uses (`lgt.methods.tpe_sampler`, same seed and budget). Its next ask is
therefore exactly what `lgt baseline --method tpe` would try next from the
same history: candidate 0, the anchor the gate falls back to. The study is
rebuilt on a resume by replaying one ask and one tell per recorded trial in
order, the same calls the live run made, so the sampler's random state
comes back the same.

Other candidates come from TPE's good region (samples of its density of the
best trials, ranked by its acquisition), and every candidate gets TPE's
score, from a second sampler instance that draws no random numbers, so
asking for them never moves candidate 0.

On a conditional space (the tabular model families) TPE asks define-by-run,
as the baseline does, so a candidate holds only its family's knobs; a
config's score is the sum of TPE's scores of its knob groups (`model` and
the features from every trial, its family's knobs from that family's
trials), as TPE with ``group=True`` rates it, and the good region draws the
shared group first, then each drawn family's own knobs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from agents.records import TrialRecord
from lgt import optuna_private
from lgt.direction import Direction
from tuning_targets import Config, SearchSpace, config_key

SamplerFactory = Callable[[], optuna.samplers.TPESampler]


class TPECandidates:
    """The graph's `CandidateSource`, backed by Optuna's TPE."""

    def __init__(self, space: SearchSpace, direction: Direction, default_config: Config,
                 sampler: SamplerFactory) -> None:
        self.space, self.direction, self.default_config = space, direction, dict(default_config)
        self.distributions = space.distributions()
        self._sampler = sampler
        self._scorer = sampler()  # scores and the good region; never asked, so its random state is never used
        self._study = self._fresh()
        self._told = 0  # trial records told so far
        self._asked: list[tuple[optuna.Trial, Config]] = []  # asked after the last told record, not yet told

    def _fresh(self) -> optuna.Study:
        study = optuna.create_study(direction=self.direction, sampler=self._sampler())
        study.enqueue_trial(self.default_config)  # the baseline's first trial: the shared default
        return study

    def sync(self, trials: Sequence[TrialRecord]) -> None:
        """Tell TPE every trial recorded since the last call, as what actually ran, in order."""
        if len(trials) < self._told:  # a different history (a test reusing the source): start over
            self._study, self._told, self._asked = self._fresh(), 0, []
        for record in trials[self._told:]:
            asked, config = self._asked.pop(0) if self._asked else self._ask()
            ran = self.space.active_config(record["config"])
            fitted = self.space.validate(dict(ran), strict=False).config  # a space whose ranges moved since (an
            ran = {k: fitted[k] for k in ran if k in fitted}  # objective's define-by-run ranges): clipped into it
            value = record.get("val_metric") if record.get("status") == "complete" else None
            if config_key(ran) == config_key(config):
                self._tell(asked, value)
            else:  # the round ran something else: TPE hears what ran, and that its own ask did not
                self._study.tell(asked, state=TrialState.FAIL)
                self._study.add_trial(optuna.trial.create_trial(
                    params=ran, distributions=self.space.distributions(ran),
                    state=TrialState.COMPLETE if value is not None else TrialState.FAIL, value=value))
            self._told += 1

    def _ask(self) -> tuple[optuna.Trial, Config]:
        """One ask, define-by-run, exactly as the baseline's worker asks (`SearchSpace.suggest`)."""
        trial = self._study.ask()
        return trial, self.space.suggest(trial)

    def _tell(self, trial: optuna.Trial, value: float | None) -> None:
        if value is None:
            self._study.tell(trial, state=TrialState.FAIL)
        else:
            self._study.tell(trial, value)

    def next(self, trials: Sequence[TrialRecord], n: int = 1) -> list[Config]:
        """TPE's own next `n` asks given `trials`: what the `tpe` baseline would try next (n=1)."""
        self.sync(trials)
        while len(self._asked) < n:
            self._asked.append(self._ask())
        return [dict(config) for _, config in self._asked[:n]]

    def region(self, trials: Sequence[TrialRecord], n: int, seed: int) -> list[Config]:
        """Up to `n` configs from TPE's good region, its favourites first (none before two trials completed)."""
        self.sync(trials)
        if sum(t.get("status") == "complete" for t in trials) < 2:
            return []
        size = max(24, 6 * n)
        if self.space.conditional:
            drawn = self._grouped_region(size, seed)
        else:
            drawn = [params for params, _ in optuna_private.tpe_region(self._scorer, self._study, self.distributions,
                                                                       size, seed)]
        out: list[Config] = []
        for params in drawn:
            config = self.space.validate(params, strict=False).config
            if all(config_key(config) != config_key(c) for c in out):
                out.append(config)
            if len(out) == n:
                break
        return out

    def scores(self, trials: Sequence[TrialRecord], configs: Sequence[Mapping[str, Any]]) -> list[float]:
        """TPE's acquisition value of each config (higher: TPE rates it likelier to beat the best)."""
        self.sync(trials)
        if not self.space.conditional:
            return optuna_private.tpe_scores(self._scorer, self._study, self.distributions,
                                             [dict(c) for c in configs])
        return self._grouped_scores([self.space.active_config(c) for c in configs])

    def _grouped_scores(self, configs: Sequence[Config]) -> list[float]:
        """Per config, the sum of TPE's acquisition over the knob groups the config holds."""
        totals = [0.0] * len(configs)
        for group in self.space.groups():
            holders = [i for i, c in enumerate(configs) if all(name in c for name in group)]
            if not holders:
                continue
            distributions = {name: self.distributions[name] for name in group}
            values = optuna_private.tpe_scores(self._scorer, self._study, distributions,
                                               [{name: configs[i][name] for name in group} for i in holders])
            for i, value in zip(holders, values, strict=True):
                totals[i] += value
        return totals

    def _grouped_region(self, size: int, seed: int) -> list[Config]:
        """`size` configs from TPE's good region of a conditional space, best total score first.

        The shared group (`model` and the features) is drawn from the
        density of the best trials; each draw then takes the next draw of
        its own family's group, from that family's best trials.
        """
        groups = self.space.groups()
        draws = [[params for params, _ in optuna_private.tpe_region(
            self._scorer, self._study, {name: self.distributions[name] for name in group}, size, seed + i)]
            for i, group in enumerate(groups)]
        taken = [0] * len(groups)
        configs: list[Config] = []
        for shared in draws[0]:
            config = dict(shared)
            for i, group in enumerate(groups[1:], start=1):
                if self.space.is_active(group[0], config):
                    config |= draws[i][taken[i] % len(draws[i])]
                    taken[i] += 1
            configs.append(self.space.active_config(config))
        scores = self._grouped_scores(configs)
        return [configs[i] for i in sorted(range(len(configs)), key=lambda i: (-scores[i], i))]
