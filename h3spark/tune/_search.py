"""Searches: which trials to run, derived only from the seed and the finished trials.

A search hands out trials in batches. Grid and random search give every trial in one
batch; differential evolution gives one generation per batch and builds the next from
the scores of the last. Nothing depends on timing or parallelism, so the same seed gives
the same trials anywhere, and a resumed search re-derives the trials it already ran.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from h3spark.errors import ConfigError
from h3spark.config._space import Domain, parse_space


@dataclass(frozen=True)
class Trial:
    """One configuration to evaluate; ``trial_id`` is its position in the search."""

    trial_id: int
    params: dict[str, Any]
    generation: int = 0
    unit: tuple[float, ...] = field(default=(), compare=False, repr=False)


def _positive_int(owner: str, parameter: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"experiment.{parameter}", [f"The '{parameter}' parameter of {owner} must be an int >= {minimum}. "
                                                     f"Got {value!r} instead."])
    return value


class Search:
    """Base of the searches; ``scores`` maps trial_id to a score (higher is better, None if it failed)."""

    kind = "search"

    def __init__(self, space: dict[str, Any]):
        self.space: dict[str, Domain] = parse_space(space)

    def next_batch(self, scores: dict[int, float | None]) -> list[Trial]:
        """The next batch of trials given the scores so far, or [] when the search is over."""
        raise NotImplementedError

    def _params(self, unit: np.ndarray) -> dict[str, Any]:
        return {name: _native(domain.from_unit(float(u))) for (name, domain), u in zip(self.space.items(), unit)}


def _unfinished(batch: list[Trial], scores) -> list[Trial]:
    """The whole batch while any of it lacks a score, else [] (the search is over)."""
    return batch if any(trial.trial_id not in scores for trial in batch) else []


def _native(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class GridSearch(Search):
    """The cartesian product of every hyperparameter's values, in the order given."""

    kind = "grid"

    def next_batch(self, scores):
        values = [domain.grid_values(name) for name, domain in self.space.items()]
        names = list(self.space)
        batch = [Trial(index, {name: _native(v) for name, v in zip(names, combo)})
                 for index, combo in enumerate(itertools.product(*values))]
        return _unfinished(batch, scores)


class RandomSearch(Search):
    """``samples`` independent draws; draw i depends only on (seed, i), so more samples extend a search."""

    kind = "random"

    def __init__(self, space, samples: int, seed: int = 0):
        super().__init__(space)
        self.samples = _positive_int("random_search", "samples", samples)
        self.seed = _positive_int("random_search", "seed", seed, minimum=0)

    def next_batch(self, scores):
        return _unfinished([self._draw(index) for index in range(self.samples)], scores)

    def _draw(self, index: int) -> Trial:
        rng = np.random.default_rng([self.seed, index])
        params = {name: _native(domain.sample(rng)) for name, domain in self.space.items()}
        return Trial(index, params)


class DifferentialEvolution(Search):
    """DE/rand/1/bin over the unit cube: ``population`` trials per generation, ``generations`` in all.

    Generation 0 is random; each later member mutates three others of the current population
    (``a + mutation * (b - c)``), crosses over with its target and replaces it if it scores
    at least as well. A failed trial scores worst.
    """

    kind = "evolution"

    def __init__(self, space, generations: int, population: int, seed: int = 0,
                 mutation: float = 0.8, crossover: float = 0.9):
        super().__init__(space)
        self.generations = _positive_int("differential_evolution", "generations", generations)
        self.population = _positive_int("differential_evolution", "population", population, minimum=4)
        self.seed = _positive_int("differential_evolution", "seed", seed, minimum=0)
        if not 0 < mutation <= 2 or not 0 <= crossover <= 1:
            raise ConfigError("experiment", [f"differential_evolution needs 0 < mutation <= 2 and 0 <= crossover <= 1. "
                                             f"Got mutation={mutation}, crossover={crossover} instead."])
        self.mutation, self.crossover = mutation, crossover

    def next_batch(self, scores):
        current = None
        for generation in range(self.generations):
            batch = self._generation(generation, current)
            if _unfinished(batch, scores):
                return batch
            current = batch if current is None else self._select(current, batch, scores)
        return []

    def _generation(self, generation: int, current: list[Trial] | None) -> list[Trial]:
        first = generation * self.population
        if current is None:
            units = [np.random.default_rng([self.seed, 0, j]).random(len(self.space)) for j in range(self.population)]
        else:
            units = [self._mutant(generation, j, current) for j in range(self.population)]
        return [Trial(first + j, self._params(unit), generation, tuple(float(u) for u in unit)) for j, unit in enumerate(units)]

    def _mutant(self, generation: int, target: int, current: list[Trial]) -> np.ndarray:
        rng = np.random.default_rng([self.seed, generation, target])
        others = [j for j in range(self.population) if j != target]
        a, b, c = (np.asarray(current[j].unit) for j in rng.choice(others, size=3, replace=False))
        mutant = np.clip(a + self.mutation * (b - c), 0.0, 1.0)
        keep = rng.random(len(self.space)) >= self.crossover
        keep[rng.integers(len(self.space))] = False  # at least one coordinate comes from the mutant
        return np.where(keep, np.asarray(current[target].unit), mutant)

    @staticmethod
    def _select(current: list[Trial], batch: list[Trial], scores) -> list[Trial]:
        def score(trial):
            value = scores.get(trial.trial_id)
            return float("-inf") if value is None else value
        return [child if score(child) >= score(parent) else parent for parent, child in zip(current, batch)]


class SingleTrial(Search):
    """One trial with fixed params (``launch``)."""

    kind = "single"

    def __init__(self, params: dict[str, Any]):
        if not isinstance(params, dict):
            raise ConfigError("experiment.params", [f"The 'params' parameter of launch must be a dict. Got {params!r} instead."])
        self.space = {}
        self.fixed = dict(params)

    def next_batch(self, scores):
        return _unfinished([Trial(0, dict(self.fixed))], scores)
