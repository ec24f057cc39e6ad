"""LLM agents that tune a model in words: Advisor, Evaluator, Optimizer.

This package sees plain data only (knob specs, trial records, metric info;
see `agents.records`) and never imports torch, optuna or ``tuning_targets``.
"""

from __future__ import annotations

from agents.advisor import Advisor
from agents.base import AgentFailure, EndpointDown
from agents.batch_advisor import BatchAdvisor
from agents.diagnostics import Diagnostics, EpochDiagnostics, alarms, diagnose, diagnose_epoch, summarize_curve
from agents.embedded import EmbeddedServer, serve_forever
from agents.evaluator import Evaluator
from agents.llm import LLMClient, LLMSettings, make_client, needs_embedded_server, preflight
from agents.optimizer import Optimizer
from agents.schemas import (
    Change,
    Choice,
    EpochProposal,
    EpochVerdict,
    GradientStep,
    Guidance,
    Proposal,
    ProposalBatch,
    Verdict,
    choice_schema,
    epoch_proposal_schema,
    epoch_verdict_schema,
    proposal_schema,
    verdict_schema,
)
from agents.transcript import CallRecord, Transcript, redact

__all__ = [
    "Advisor",
    "AgentFailure",
    "BatchAdvisor",
    "CallRecord",
    "Change",
    "Choice",
    "Diagnostics",
    "EmbeddedServer",
    "EndpointDown",
    "EpochDiagnostics",
    "EpochProposal",
    "EpochVerdict",
    "Evaluator",
    "GradientStep",
    "Guidance",
    "LLMClient",
    "LLMSettings",
    "Optimizer",
    "Proposal",
    "ProposalBatch",
    "Transcript",
    "Verdict",
    "alarms",
    "choice_schema",
    "diagnose",
    "diagnose_epoch",
    "epoch_proposal_schema",
    "epoch_verdict_schema",
    "make_client",
    "needs_embedded_server",
    "preflight",
    "proposal_schema",
    "redact",
    "serve_forever",
    "summarize_curve",
    "verdict_schema",
]
