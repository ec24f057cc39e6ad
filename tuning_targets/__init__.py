"""What gets tuned: data, models, the one trainer and the search space.

Knows nothing of LLMs; the agents see these targets only as plain data.
"""

from tuning_targets.base import Target
from tuning_targets.families import MODEL_FAMILIES, parse_models
from tuning_targets.metrics import METRICS, check_metric
from tuning_targets.records import EpochRecord, Reporter, TrialResult
from tuning_targets.registry import (
    TARGET_NAMES,
    check_target_name,
    known_task,
    make_target,
    takes_models,
    target_label,
)
from tuning_targets.space import Config, SearchSpace, config_changes, config_diff, config_key
from tuning_targets.stepping import FailedRun, ModelRun, TrialRefused, out_of_memory_reason
from tuning_targets.tabular import check_csv_format

__all__ = ["METRICS", "MODEL_FAMILIES", "TARGET_NAMES", "Config", "EpochRecord", "FailedRun", "ModelRun", "Reporter",
           "SearchSpace", "Target", "TrialRefused", "TrialResult", "check_csv_format", "check_metric",
           "check_target_name", "config_changes", "config_diff", "config_key", "known_task", "make_target", "out_of_memory_reason",
           "parse_models", "takes_models", "target_label"]
