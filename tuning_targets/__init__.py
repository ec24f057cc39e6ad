"""What gets tuned: data, models, the one trainer and the search space.

Knows nothing of LLMs; the agents see these targets only as plain data.
"""

from tuning_targets.base import Target
from tuning_targets.records import EpochRecord, Reporter, TrialResult
from tuning_targets.registry import TARGET_NAMES, check_target_name, make_target, target_label
from tuning_targets.space import Config, SearchSpace, config_diff, config_key
from tuning_targets.tabular import check_csv_format
from tuning_targets.trainer import TrialRefused, out_of_memory_reason

__all__ = ["TARGET_NAMES", "Config", "EpochRecord", "Reporter", "SearchSpace", "Target", "TrialRefused", "TrialResult",
           "check_csv_format", "check_target_name", "config_diff", "config_key", "make_target", "out_of_memory_reason",
           "target_label"]
