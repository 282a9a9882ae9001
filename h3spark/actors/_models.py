"""An actor's model, through the model contract: built from a spec or the mlp shorthand, or loaded from a
saved model file, an experiment's best model, or a checkpoint (a training run's or an actor's snapshots).

    >>> model = actor_model(config.model, config.training, workdir)     # any engine
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from typing import Iterator

from h3spark.config._actors import ActorModelConfig, ActorTrainingConfig
from h3spark.errors import DataError
from h3spark.storage import filesystem_for, is_published, join_uri, resolve_published, resolve_uri
from h3spark.train import latest_checkpoint, train_options
from h3spark.train.engines.model import Model, build_model, load_model, load_weights
from h3spark.train.engines.spec import ModelSpec, mlp_spec

MODEL_SUFFIX = ".safetensors"
_STEP_DIR = re.compile(r"^step-(\d+)$")


def actor_model(config: ActorModelConfig, training: ActorTrainingConfig, workdir: str) -> Model:
    """The model ``config`` describes, with ``training``'s options, in ``config.engine``."""
    options = train_options(training.model_dump(exclude={"batch_size"}))
    if config.spec is not None:
        spec = ModelSpec.from_dict(config.spec, where="model.spec")
        return build_model(config.engine, spec, seed=config.seed, options=options)
    if config.mlp is not None:
        mlp = config.mlp
        spec = mlp_spec(mlp.input_shape, mlp.hidden, mlp.classes, dropout=mlp.dropout)
        return build_model(config.engine, spec, seed=config.seed, options=options)
    source = config.source
    uri = resolve_uri(getattr(config, source), workdir)
    found = uri if source == "file" else find_model_file(join_uri(uri, "best_model") if source == "experiment" else uri)
    with local_copy(found) as path:
        return load_model(path, engine=config.engine, options=options)


def find_model_file(uri: str) -> str:
    """The model file (saved by Model.save) in ``uri``: a file, a folder holding one, a training checkpoint
    root (its newest checkpoint) or an actor's snapshot folder (its newest step)."""
    fs = filesystem_for(uri)
    if not fs.exists(uri):
        raise DataError(f"no model at {uri}: nothing is there. Check the path (relative paths are under the workdir).")
    if not fs.isdir(uri):
        return uri
    folders = [uri]
    checkpoint = latest_checkpoint(uri)
    if checkpoint is not None:  # published as a dataset: its files are in the current version's folder
        folders.append(resolve_published(checkpoint, fs) if is_published(checkpoint, fs) else checkpoint)
    steps = sorted((int(match.group(1)), name) for name in fs.listdir(uri) if (match := _STEP_DIR.match(name)))
    folders += [join_uri(uri, name) for _, name in reversed(steps)]
    for folder in folders:
        for name in fs.listdir(folder) if fs.isdir(folder) else []:
            if name.endswith(MODEL_SUFFIX) and _is_contract_file(join_uri(folder, name)):
                return join_uri(folder, name)
    raise DataError(f"found no model saved by Model.save (a {MODEL_SUFFIX} file with the model spec in its metadata) "
                    f"in {uri}, its newest checkpoint or its step-* folders. Give model.file the model's path instead.")


def _is_contract_file(uri: str) -> bool:
    with local_copy(uri) as path:
        try:
            return "spec" in load_weights(path)[1]
        except DataError:
            return False


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[str]:
    """A local path holding the file at ``uri`` (itself for file://; a temporary copy otherwise)."""
    if uri.startswith("file://") or "://" not in uri:
        yield uri[len("file://"):] if uri.startswith("file://") else uri
        return
    handle, path = tempfile.mkstemp(suffix=MODEL_SUFFIX)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(filesystem_for(uri).read_bytes(uri))
        yield path
    finally:
        os.remove(path)


def save_model(model: Model, uri: str) -> str:
    """``model`` saved (Model.save) at ``uri``, on any file system."""
    if uri.startswith("file://") or "://" not in uri:
        path = uri[len("file://"):] if uri.startswith("file://") else uri
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        return model.save(path)
    handle, path = tempfile.mkstemp(suffix=MODEL_SUFFIX)
    os.close(handle)
    try:
        model.save(path)
        with open(path, "rb") as source:
            filesystem_for(uri).write_bytes(uri, source.read())
    finally:
        os.remove(path)
    return uri
