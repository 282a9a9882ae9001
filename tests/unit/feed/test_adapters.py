"""The MXNet adapter (.venv has MXNet), and the torch adapter's install hint when torch is absent.
The torch adapter itself runs under torch's interpreter: tests/integration/torch/test_torch_adapters.py."""

import importlib.util
import sys

import numpy as np
import pytest

from h3spark.feed import DataIterator, StreamBatcher
from tests.conftest import require

HAS_MXNET = importlib.util.find_spec("mxnet") is not None


@pytest.fixture
def mxnet_installed():
    require(HAS_MXNET, "mxnet is not installed (pip install 'h3spark[mxnet]')")


def separable(dataset):
    """Labels 0/1 that a linear model learns from the features (label = row id parity is not)."""
    return dataset(rows=256, files=2, row_groups=2, width=4)


def test_mxnet_iter_epochs_shapes_and_padding(dataset, mxnet_installed):
    from h3spark.feed import MXNetDataIter

    data = DataIterator(dataset(rows=10, files=1, row_groups=1), batch_size=4, shuffle=True, seed=1)
    it = MXNetDataIter(data, pad_last=True)
    assert it.provide_data[0].shape == (4, 4) and it.provide_label[0].shape == (4,) and len(it) == 3
    epoch0 = list(it)
    assert [b.pad for b in epoch0] == [0, 0, 2] and epoch0[2].data[0].shape == (4, 4)
    labels0 = np.concatenate([b.label[0].asnumpy()[: 4 - b.pad] for b in epoch0])
    np.testing.assert_array_equal(np.sort(labels0), np.arange(10))
    np.testing.assert_array_equal(epoch0[0].data[0].asnumpy()[:, 0], epoch0[0].label[0].asnumpy())
    it.reset()
    it.reset()  # a reset before any batch does not skip an epoch
    epoch1 = list(it)
    assert it.epoch == 1 and [list(b.label[0].asnumpy()) for b in epoch1] != [list(b.label[0].asnumpy()) for b in epoch0]


def test_gluon_trains_from_the_iterator(dataset, mxnet_installed):
    import mxnet as mx
    from mxnet import autograd, gluon

    from h3spark.feed import MXNetDataIter

    uri = dataset(rows=256, files=2, row_groups=2, width=4)
    it = MXNetDataIter(DataIterator(uri, batch_size=32, shuffle=True, seed=0))
    net = gluon.nn.Dense(2)
    net.initialize(mx.init.Zero())
    trainer = gluon.Trainer(net.collect_params(), "sgd", {"learning_rate": 0.05})
    loss_fn = gluon.loss.SoftmaxCrossEntropyLoss()
    losses = []
    for _ in range(3):
        it.reset()
        for batch in it:
            x = batch.data[0] / 256.0
            y = (batch.label[0] >= 128).astype("float32")  # is the row in the second half?
            with autograd.record():
                loss = loss_fn(net(x), y)
            loss.backward()
            trainer.step(x.shape[0])
            losses.append(float(loss.mean().asscalar()))
    assert len(losses) == 24 and np.mean(losses[-8:]) < np.mean(losses[:8])


def test_mxnet_iter_over_a_stream(mxnet_installed):
    from h3spark.feed import MXNetDataIter

    records = [{"features": [float(i), 0.0], "label": i} for i in range(5)]
    it = MXNetDataIter(StreamBatcher(records, batch_size=2, feature_shape=(2,)))
    assert [b.data[0].shape[0] for b in it] == [2, 2, 1]
    with pytest.raises(TypeError, match="no known length"):
        len(it)


def test_torch_missing_gives_an_install_hint(dataset, monkeypatch):
    from h3spark.errors import DependencyError

    monkeypatch.setitem(sys.modules, "torch", None)  # as if torch were not installed, wherever this runs
    from h3spark.feed import TorchBatches

    with pytest.raises(DependencyError, match=r"pip install 'h3spark\[torch\]'"):
        TorchBatches(DataIterator(dataset(rows=4), batch_size=2))
