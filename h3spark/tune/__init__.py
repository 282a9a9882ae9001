"""Parallel experiments: grid, random and evolutionary search, each trial on a Spark task.

    >>> from h3spark import tune
    >>> result = tune.grid_search(train_fn, {"C": [0.1, 1, 10]}, metric="accuracy", direction="max")
    >>> print(result.leaderboard())
"""

from h3spark.tune._api import differential_evolution, grid_search, launch, random_search, run_search
from h3spark.tune._context import Shard, TrialContext, TrialStopped
from h3spark.tune._from_config import require_success, run_experiment
from h3spark.tune._naming import trial_dirname
from h3spark.tune._results import ExperimentResult, leaderboard
from h3spark.tune._search import DifferentialEvolution, GridSearch, RandomSearch, Search, SingleTrial, Trial
from h3spark.config._space import Choice, Float, Int, LogUniform, parse_space
from h3spark.tune._stopping import MedianStoppingRule, StoppingRule
from h3spark.tune._tensorboard import local_logdir, tensorboard_command

__all__ = [
    "grid_search",
    "random_search",
    "differential_evolution",
    "launch",
    "run_search",
    "run_experiment",
    "require_success",
    "ExperimentResult",
    "leaderboard",
    "TrialContext",
    "TrialStopped",
    "Shard",
    "Trial",
    "Search",
    "GridSearch",
    "RandomSearch",
    "DifferentialEvolution",
    "SingleTrial",
    "Int",
    "Float",
    "LogUniform",
    "Choice",
    "parse_space",
    "trial_dirname",
    "StoppingRule",
    "MedianStoppingRule",
    "local_logdir",
    "tensorboard_command",
]
