"""The JSON of the Open Inference Protocol (KServe V2 REST): model metadata, infer requests and responses.

    >>> metadata("digits", model)["inputs"]
    [{'name': 'input', 'datatype': 'FP32', 'shape': [-1, 64]}]
    >>> request = parse_infer(b'{"inputs": [{"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [...]}]}',
    ...                       "digits", model)
    >>> infer_response("digits", model, request, model.predict(request.features))["outputs"][1]
    {'name': 'label', 'datatype': 'INT64', 'shape': [1], 'data': [3]}

A model takes one input tensor, ``input``: shape ``[N, *input_shape]`` or ``[N, features]`` (the rows
flattened), datatype FP32, FP64 or INT64, data a flat list in row-major order or a list nested as the
shape. It answers ``probabilities`` (FP32 ``[N, classes]``) and ``label`` (INT64 ``[N]``); a request's
``outputs`` may choose among them. Anything else is a :class:`ProtocolError` (400) that names the
tensor and what the model expects. The binary tensor extension is not supported.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass

import numpy as np

from h3spark.serve._model import ServedModel

INPUT_NAME = "input"
OUTPUT_NAMES = ("probabilities", "label")
DATATYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}
BINARY_HEADER = "Inference-Header-Content-Length"


class ProtocolError(Exception):
    """A request the protocol refuses: ``status`` (400 bad request, 404 unknown model) and ``message``."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


@dataclass(frozen=True)
class InferRequest:
    """A checked infer request: its id, the rows as float32 (N, *input_shape), the outputs asked for."""

    id: str | None
    features: np.ndarray
    outputs: tuple[str, ...]


def metadata(name: str, model: ServedModel) -> dict:
    """The model metadata response: its versions, platform, input and outputs."""
    return {"name": name, "versions": [str(model.version)], "platform": f"h3spark_{model.engine}",
            "inputs": [{"name": INPUT_NAME, "datatype": "FP32", "shape": [-1, *model.input_shape]}],
            "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(model.classes)]},
                        {"name": "label", "datatype": "INT64", "shape": [-1]}]}


def parse_infer(body: bytes, name: str, model: ServedModel) -> InferRequest:
    """Check an infer request's JSON against ``model``; a ProtocolError says what is wrong and what fits."""
    request = _json_object(body)
    inputs = request.get("inputs")
    if not isinstance(inputs, list) or len(inputs) != 1 or not isinstance(inputs[0], dict):
        count = len(inputs) if isinstance(inputs, list) else "no list of"
        raise ProtocolError(f"model {name!r} takes one input tensor, {_expected(model)}; the request has {count} inputs.")
    tensor = inputs[0]
    if tensor.get("name") != INPUT_NAME:
        raise ProtocolError(f"model {name!r} has no input tensor {tensor.get('name')!r}; it takes {_expected(model)}.")
    features = _tensor_rows(tensor, name, model)
    request_id = request.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError(f"the request's id must be a string. Got {request_id!r:.80} instead.")
    return InferRequest(request_id, features, _outputs(request.get("outputs"), name))


def infer_response(name: str, model: ServedModel, request: InferRequest, probabilities: np.ndarray) -> dict:
    """The infer response: the outputs asked for, each with name, datatype, shape and flat data."""
    rows = len(probabilities)
    tensors = {"probabilities": {"name": "probabilities", "datatype": "FP32", "shape": [rows, len(model.classes)],
                                 "data": np.asarray(probabilities, np.float32).reshape(-1).tolist()},
               "label": {"name": "label", "datatype": "INT64", "shape": [rows],
                         "data": model.labels(probabilities).tolist()}}
    response = {"model_name": name, "model_version": str(model.version),
                "outputs": [tensors[output] for output in request.outputs]}
    if request.id is not None:
        response["id"] = request.id
    return response


def _json_object(body: bytes) -> dict:
    try:
        request = json.loads(body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ProtocolError(f"the request body is not JSON ({error}); send an infer request object.") from None
    if not isinstance(request, dict):
        raise ProtocolError('the request body must be a JSON object with "inputs": [{"name", "shape", "datatype", '
                            '"data"}].')
    return request


def _expected(model: ServedModel) -> str:
    return f"{INPUT_NAME!r} of datatype FP32, FP64 or INT64 and shape {model.shapes()}"


def _tensor_rows(tensor: dict, name: str, model: ServedModel) -> np.ndarray:
    """The tensor's data as float32 (N, *input_shape), after checking its datatype, shape and values."""
    where = f"input tensor {INPUT_NAME!r} of model {name!r}"
    datatype, shape = tensor.get("datatype"), tensor.get("shape")
    if datatype not in DATATYPES:
        raise ProtocolError(f"{where} has datatype {datatype!r}; it must be one of {', '.join(DATATYPES)}.")
    if not isinstance(shape, list) or not all(type(size) is int and size >= 0 for size in shape):
        raise ProtocolError(f"{where} needs a shape: a list of sizes, e.g. [N, {model.features}]. Got {shape!r:.80} instead.")
    if not _fits(shape, model):
        raise ProtocolError(f"{where} has shape {shape}; the model expects shape {model.shapes()} (N rows first).")
    values = _values(tensor.get("data"), where, shape, datatype)
    return values.astype(np.float32).reshape((shape[0], *model.input_shape))


def _fits(shape: list[int], model: ServedModel) -> bool:
    return len(shape) >= 2 and (tuple(shape[1:]) == model.input_shape or shape[1:] == [model.features])


def _values(data, where: str, shape: list[int], datatype: str) -> np.ndarray:
    if not isinstance(data, list):
        raise ProtocolError(f"{where} needs data: a list of numbers, flat or nested as its shape {shape}.")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy 1.x warns (numpy 2 raises) on a ragged nested list
        try:
            array = np.asarray(data)
        except (ValueError, Warning):
            array = None
    if array is not None and array.size == 0:
        array = np.zeros(0, DATATYPES[datatype])  # [] reads as float64, whatever the datatype
    if array is None or array.dtype.kind not in "iuf":
        raise ProtocolError(f"{where}: its data must be numbers, a flat list or a list nested as its shape {shape}.")
    if array.ndim > 1 and list(array.shape) != shape:
        raise ProtocolError(f"{where} has shape {shape}, but its data is nested as {list(array.shape)}.")
    if array.size != math.prod(shape):
        raise ProtocolError(f"{where} has shape {shape} ({math.prod(shape)} values), but its data holds {array.size} values.")
    if datatype == "INT64" and array.dtype.kind == "f":
        raise ProtocolError(f"{where} has datatype INT64, but its data holds numbers that are not integers.")
    return array.astype(DATATYPES[datatype], copy=False)


def _outputs(requested, name: str) -> tuple[str, ...]:
    if requested is None:
        return OUTPUT_NAMES
    if not isinstance(requested, list) or not all(isinstance(item, dict) for item in requested):
        raise ProtocolError('the request\'s "outputs" must be a list of {"name": ...} objects.')
    names = tuple(item.get("name") for item in requested)
    unknown = [output for output in names if output not in OUTPUT_NAMES]
    if unknown:
        raise ProtocolError(f"model {name!r} has no output tensor {unknown[0]!r}; its outputs are "
                            f"{', '.join(OUTPUT_NAMES)}.")
    return names
