"""The words lgt stores and compares are each one typed set, and every place that lists them reads that set."""

from __future__ import annotations

from typing import get_args

from graphs import evidence, proposers
from lgt import methods, vocabulary
from lgt.tune import WORDS


def test_each_registry_says_what_every_word_of_its_type_means() -> None:
    for words, registry in ((vocabulary.Proposer, vocabulary.PROPOSERS), (vocabulary.Source, vocabulary.SOURCES),
                            (vocabulary.WordsOption, vocabulary.WORDS), (evidence.Origin, evidence.ORIGINS)):
        assert list(registry) == list(get_args(words)) and all(registry.values())
    assert set(get_args(vocabulary.Words)) < set(vocabulary.WORDS)


def test_the_graphs_proposers_and_the_agents_methods_cover_every_proposer_once() -> None:
    assert list(proposers.PROPOSERS) == list(vocabulary.PROPOSERS)
    named = [m.proposer for m in methods.METHODS if m.proposer is not None]
    assert sorted(named) == sorted(vocabulary.PROPOSERS)
    assert all(methods.by_proposer(p).proposer == p for p in vocabulary.PROPOSERS)
    assert tuple(vocabulary.WORDS) == WORDS


def test_a_person_edited_source_and_the_source_test() -> None:
    assert vocabulary.edited("default") == "user"
    assert vocabulary.edited("advisor") == "advisor+user"
    assert vocabulary.is_source({"source": "fallback"}, "fallback")
    assert not vocabulary.is_source({"source": "advisor+user"}, "advisor") and not vocabulary.is_source({}, "tpe")
    assert evidence.origin_words("region") == "from TPE's good region" and evidence.origin_words("other") == ""
