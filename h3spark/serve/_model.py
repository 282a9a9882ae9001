"""A trained model to predict with, whatever trained it: a model-contract file (safetensors: the
numpy, mxnet and torch engines) or a scikit-learn estimator (``model.joblib``).

    >>> model_file = find_model("checkpoints/digits", workdir="/tmp/work")   # the newest checkpoint's file
    >>> model = model_file.load()                  # a ServedModel
    >>> model.predict(features)                    # probabilities (N, len(model.classes)), float32

A :class:`ModelFile` holds the file's bytes, so Spark tasks and server threads load the same model
without reaching the path themselves. joblib files are pickles, and unpickling runs code: h3spark
loads one only from the folders its own experiments write (``best_model/`` or a trial's ``model/``,
with the experiment's ``trials.jsonl`` above), never one a user or a request hands it from
elsewhere.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

from h3spark.errors import DataError, missing_dependency
from h3spark.storage import filesystem_for, is_published, join_uri, resolve_published, resolve_uri, split_name

logger = logging.getLogger(__name__)

JOBLIB_NAME = "model.joblib"
SAFETENSORS_SUFFIX = ".safetensors"
EXPERIMENT_LOG = "trials.jsonl"  # an experiment folder's log: the mark of a folder h3spark's experiments wrote
_PICKLE_FOLDERS = ("best_model", "model")


class ServedModel(ABC):
    """What predicting needs from a model: its input shape, its classes, and probabilities."""

    engine: str
    input_shape: tuple[int, ...]
    classes: np.ndarray  # the label of each output column (int64)
    version: int  # the training step the weights are from (0 for an estimator)

    @property
    def features(self) -> int:
        """The number of values in one row of input."""
        return int(np.prod(self.input_shape))

    def shapes(self) -> str:
        """The input shapes it takes, batch axis first, for messages: ``[-1, 1, 8, 8] or [-1, 64]``."""
        flat = f" or [-1, {self.features}]" if len(self.input_shape) > 1 else ""
        return f"{[-1, *self.input_shape]}{flat}"

    @abstractmethod
    def predict(self, features: np.ndarray) -> np.ndarray:
        """Class probabilities (N, len(classes)), float32, for a batch of rows."""

    def labels(self, probabilities: np.ndarray) -> np.ndarray:
        """The predicted label of each row (int64)."""
        return self.classes[np.argmax(probabilities, axis=1)] if len(probabilities) else self.classes[:0]


class ContractModel(ServedModel):
    """A model saved by ``Model.save`` (h3spark.train.engines.model), in the engine it runs in."""

    def __init__(self, model):
        self.model, self.engine = model, model.engine
        self.input_shape = tuple(model.spec.input_shape)
        self.classes = np.arange(model.spec.classes, dtype=np.int64)
        self.version = int(model.step)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.model.predict(self.model.batch(features))


class EstimatorModel(ServedModel):
    """A fitted scikit-learn classifier. One without ``predict_proba`` (ridge, sgd with the hinge loss)
    gives probability 1 to the class it predicts."""

    engine = "sklearn"
    version = 0

    def __init__(self, estimator, where: str):
        if not hasattr(estimator, "n_features_in_") or not hasattr(estimator, "classes_"):
            raise DataError(f"{where} holds a {type(estimator).__name__}, not a fitted scikit-learn classifier "
                            "(it has no n_features_in_ and classes_).")
        self.estimator = estimator
        self.input_shape = (int(estimator.n_features_in_),)
        self.classes = np.asarray(estimator.classes_).astype(np.int64)

    def predict(self, features: np.ndarray) -> np.ndarray:
        rows = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
        if hasattr(self.estimator, "predict_proba"):
            return np.asarray(self.estimator.predict_proba(rows), dtype=np.float32)
        chosen = np.searchsorted(self.classes, np.asarray(self.estimator.predict(rows)).astype(np.int64))
        probabilities = np.zeros((len(rows), len(self.classes)), dtype=np.float32)
        probabilities[np.arange(len(rows)), chosen] = 1.0
        return probabilities


@dataclass(frozen=True)
class ModelFile:
    """A model file's URI, its kind (``contract`` or ``sklearn``) and bytes, and the engine to run it in."""

    uri: str
    kind: str
    data: bytes
    engine: str | None = None

    def load(self) -> ServedModel:
        """The model, ready to predict; a file that is not one is a DataError naming it."""
        if self.kind == "sklearn":
            return EstimatorModel(_unpickle(self.data, self.uri), self.uri)
        from h3spark.train.engines.model import load_model

        with tempfile.TemporaryDirectory(prefix="h3spark-model-") as folder:
            path = os.path.join(folder, "model" + SAFETENSORS_SUFFIX)
            with open(path, "wb") as handle:
                handle.write(self.data)
            try:
                return ContractModel(load_model(path, engine=self.engine))
            except DataError as error:
                raise DataError(str(error).replace(path, self.uri)) from None


def find_model(uri: str, workdir: str | None = None, engine: str | None = None) -> ModelFile:
    """The model at ``uri`` (relative: under ``workdir``): a ``.safetensors`` file ``Model.save`` wrote, a
    ``model.joblib`` an experiment wrote, or a folder holding one (an experiment's ``best_model/``, a
    training run's checkpoints: the newest). Nothing there, or no model, is a DataError saying what to give."""
    from h3spark.actors._models import find_model_file

    resolved = resolve_uri(uri, workdir)
    fs = filesystem_for(resolved)
    if not fs.exists(resolved):
        raise DataError(f"no model at {resolved}: nothing is there. Give a model file, a training run's checkpoints "
                        "or an experiment's folder (relative paths are under the workdir).")
    if fs.isdir(resolved) and fs.exists(join_uri(resolved, "best_model")):
        resolved = join_uri(resolved, "best_model")  # an experiment's folder: its best trial's model
    joblib_uri = _joblib_file(resolved, fs)
    if joblib_uri is not None:
        _check_pickle_origin(joblib_uri, fs)
        return ModelFile(joblib_uri, "sklearn", fs.read_bytes(joblib_uri))
    found = _checkpoint_model(resolved, fs) or find_model_file(resolved)
    return ModelFile(found, "contract", filesystem_for(found).read_bytes(found), engine)


def _checkpoint_model(uri: str, fs) -> str | None:
    """The model file of a training checkpoint (a published folder: ``step-N/_versions/V/``) at ``uri``, or of
    the newest checkpoint when ``uri`` is a run's checkpoint root; None when ``uri`` is neither."""
    from h3spark.train import latest_checkpoint
    from h3spark.train._model import MODEL_FILE

    if not fs.isdir(uri):
        return None
    checkpoint = uri if is_published(uri, fs) else latest_checkpoint(uri)
    if checkpoint is None:
        return None
    found = join_uri(resolve_published(checkpoint, fs), MODEL_FILE)
    return found if fs.exists(found) else None


def _joblib_file(uri: str, fs) -> str | None:
    if not fs.isdir(uri):
        return uri if uri.endswith(".joblib") else None
    candidate = join_uri(uri, JOBLIB_NAME)
    return candidate if fs.exists(candidate) else None


def _check_pickle_origin(uri: str, fs) -> None:
    """Refuse a joblib file outside the folders an h3spark experiment writes (see the module docstring)."""
    folder, _ = split_name(uri)
    parent, name = split_name(folder)
    above = [parent, split_name(parent)[0], split_name(split_name(parent)[0])[0]]
    if name in _PICKLE_FOLDERS and any(fs.exists(join_uri(place, EXPERIMENT_LOG)) for place in above):
        logger.info("loading a pickle (joblib) an h3spark experiment wrote model=%s", uri)
        return
    raise DataError(f"{uri} is a pickle (joblib), and unpickling runs code: h3spark loads one only from an experiment "
                    f"it ran (best_model/ or a trial's model/ folder, with the experiment's {EXPERIMENT_LOG} above). "
                    "Give that experiment's folder, or save the model with Model.save (safetensors).")


def _unpickle(data: bytes, where: str):
    try:
        import joblib
    except ImportError:
        raise missing_dependency("joblib", "Loading a scikit-learn model") from None
    try:
        return joblib.load(io.BytesIO(data))
    except Exception as error:  # noqa: BLE001 - any failure to unpickle means the file is no model for us
        raise DataError(f"{where} could not be read as a scikit-learn model ({type(error).__name__}: {error}).") from None
