"""The parameter store's updaters: by name, from a model's training options, and bad parameters."""

from __future__ import annotations

import pytest

from h3spark.errors import UsageError
from h3spark.train.engines.model import TrainOptions
from h3spark.train.store import AdamUpdater, DCASGDUpdater, SGDUpdater, make_updater, updater_from_options


def test_updaters_by_name_and_their_slots():
    assert make_updater("sgd", lr=0.5) == SGDUpdater(lr=0.5)
    assert make_updater("sgd", momentum=0.9).slot_names == ("momentum",)
    assert make_updater("adam").slot_names == ("mean", "var")
    assert make_updater("dcasgd").slot_names == ("backup",)
    assert make_updater("dcasgd", momentum=0.5).slot_names == ("backup", "momentum")
    updater = AdamUpdater(lr=0.01)
    assert make_updater(updater) is updater


def test_unknown_updaters_parameters_and_values_are_refused_with_the_fix():
    with pytest.raises(UsageError, match=r"unknown updater 'ftrl' for the parameter store; use one of 'sgd', 'adam', "
                                         r"'dcasgd' \(by name, e.g. updater='adam'\) or an updater object"):
        make_updater("ftrl")
    with pytest.raises(UsageError, match="unknown updater 3"):
        make_updater(3)
    with pytest.raises(UsageError, match="updater 'sgd' for the parameter store takes lr, momentum. Got beta1 instead."):
        make_updater("sgd", beta1=0.9)
    with pytest.raises(UsageError, match=r"The 'lr' parameter of SGDUpdater must be a number in the range \(0.0, inf\). "
                                         "Got -1 instead."):
        SGDUpdater(lr=-1)
    with pytest.raises(UsageError, match=r"'beta2' parameter of AdamUpdater .* \[0.0, 1.0\). Got 1.0 instead"):
        AdamUpdater(beta2=1.0)
    with pytest.raises(UsageError, match="'lamda' parameter of DCASGDUpdater"):
        DCASGDUpdater(lamda="big")


def test_the_training_options_give_the_same_optimizer_and_refuse_what_a_store_cannot_apply():
    assert updater_from_options(TrainOptions(lr=0.2, momentum=0.9)) == SGDUpdater(lr=0.2, momentum=0.9)
    assert updater_from_options(TrainOptions(optimizer="adam", lr=0.01, beta1=0.8)) == AdamUpdater(lr=0.01, beta1=0.8)
    assert updater_from_options(TrainOptions(optimizer="dcasgd", dcasgd_lambda=0.1)) == DCASGDUpdater(lamda=0.1)
    with pytest.raises(UsageError, match=r"do not apply weight_decay=0.01, clip_norm=1.0; set them to their defaults"):
        updater_from_options(TrainOptions(weight_decay=0.01, clip_norm=1.0))
