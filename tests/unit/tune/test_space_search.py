"""Search spaces and searches: values, determinism, extension, mirrored results, bad input."""

import math

import numpy as np
import pytest

from h3spark.errors import ConfigError
from h3spark.tune import Choice, DifferentialEvolution, Float, GridSearch, Int, LogUniform, RandomSearch, parse_space


def test_parse_space_turns_lists_and_mappings_into_domains():
    space = parse_space({"c": [1, 2], "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
                         "n": {"type": "int", "low": 1, "high": 5, "step": 2}, "act": {"type": "choice", "values": ["a"]},
                         "fixed": 3})
    assert [type(d).__name__ for d in space.values()] == ["Choice", "LogUniform", "Int", "Choice", "Choice"]
    assert space["n"].grid_values("n") == [1, 3, 5]


@pytest.mark.parametrize("spec, message", [
    ({"lr": {"type": "loguniform", "low": 0, "high": 1}}, "The 'low' parameter of LogUniform must be a number > 0. Got 0 instead."),
    ({"n": {"type": "int", "low": 5, "high": 1}}, "The 'high' parameter of Int must be an int >= low (5). Got 1 instead."),
    ({"n": {"type": "int", "low": 1.5, "high": 3}}, "The 'low' parameter of Int must be an int. Got 1.5 instead."),
    ({"x": {"type": "normal", "low": 0, "high": 1}}, "x: 'type' must be one of int, float, loguniform, choice. Got 'normal' instead."),
    ({"x": {"type": "float", "low": 0}}, "x: a float range needs 'low' and 'high'. Got keys ['low'] instead."),
    ({"x": []}, "The 'values' parameter of Choice must be a non-empty list. Got [] instead."),
    ({}, "must be a non-empty mapping"),
])
def test_bad_spaces_say_what_to_fix(spec, message):
    with pytest.raises(ConfigError) as error:
        parse_space(spec)
    assert message in str(error.value)


def test_grid_is_the_cartesian_product_in_order_and_rejects_continuous_ranges():
    batch = GridSearch({"a": [1, 2], "b": ["x", "y", "z"]}).next_batch({})
    assert [t.params for t in batch][:4] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"}, {"a": 2, "b": "x"}]
    assert [t.trial_id for t in batch] == list(range(6))
    assert GridSearch({"a": [1, 2]}).next_batch({0: 1.0, 1: None}) == []
    with pytest.raises(ConfigError, match="grid search cannot enumerate"):
        GridSearch({"lr": Float(0, 1)}).next_batch({})


def test_random_draws_stay_in_range_and_depend_only_on_seed_and_index():
    space = {"n": Int(2, 9), "x": Float(-1, 1), "lr": LogUniform(1e-5, 1e-1), "act": Choice(["a", "b"])}
    small = RandomSearch(space, samples=20, seed=3).next_batch({})
    extended = RandomSearch(space, samples=40, seed=3).next_batch({})
    assert [t.params for t in extended[:20]] == [t.params for t in small]
    assert small != RandomSearch(space, samples=20, seed=4).next_batch({})
    for trial in extended:
        p = trial.params
        assert 2 <= p["n"] <= 9 and isinstance(p["n"], int) and -1 <= p["x"] <= 1 and 1e-5 <= p["lr"] <= 1e-1
    logs = [math.log10(t.params["lr"]) for t in extended]
    assert min(logs) < -3.5 and max(logs) > -2  # spread over decades, not bunched near the top


def _run_de(search, objective):
    scores, trials = {}, []
    while batch := search.next_batch(scores):
        trials += batch
        scores.update({t.trial_id: objective(t.params) for t in batch})
    return trials, scores


def test_differential_evolution_improves_and_is_deterministic():
    space = {"x": Float(-5, 5), "y": Float(-5, 5)}
    objective = lambda p: -((p["x"] - 1) ** 2 + (p["y"] + 2) ** 2)  # noqa: E731
    trials, scores = _run_de(DifferentialEvolution(space, generations=8, population=8, seed=1), objective)
    again, _ = _run_de(DifferentialEvolution(space, generations=8, population=8, seed=1), objective)
    assert [t.params for t in trials] == [t.params for t in again] and len(trials) == 64
    first = max(scores[t.trial_id] for t in trials[:8])
    assert max(scores.values()) > first and max(scores.values()) > -0.5


def test_mirrored_objective_gives_the_same_trials():
    # a search sees scores; a negated metric with the flipped direction gives the same scores
    space = {"x": Float(-5, 5)}
    metric = lambda p: (p["x"] - 2) ** 2  # noqa: E731
    minimise, _ = _run_de(DifferentialEvolution(space, 4, 5, seed=0), lambda p: -metric(p))
    maximise_negated, _ = _run_de(DifferentialEvolution(space, 4, 5, seed=0), lambda p: -(-(-metric(p))))
    assert [t.params for t in minimise] == [t.params for t in maximise_negated]


def test_failed_trials_score_worst_in_evolution():
    search = DifferentialEvolution({"x": Float(0, 1)}, generations=2, population=4, seed=0)
    first = search.next_batch({})
    second = search.next_batch({t.trial_id: None for t in first})
    assert [t.trial_id for t in second] == [4, 5, 6, 7]
    survivors = DifferentialEvolution._select(first, second, {**{t.trial_id: None for t in first}, 4: 0.5})
    assert survivors[0] is second[0] and survivors[1] is second[1]  # None vs None keeps the child (>=)


def test_evolution_rejects_tiny_populations():
    with pytest.raises(ConfigError, match="The 'population' parameter of differential_evolution must be an int >= 4. Got 3 instead."):
        DifferentialEvolution({"x": Float(0, 1)}, generations=2, population=3)


def test_domains_map_the_unit_interval_onto_their_values():
    assert Int(0, 2).from_unit(0.999999) == 2 and Int(0, 2).from_unit(0.0) == 0
    assert Choice(["a", "b"]).from_unit(1.0) == "b"
    assert np.isclose(LogUniform(1e-4, 1e-2).from_unit(0.5), 1e-3)
