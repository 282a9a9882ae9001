"""The Open Inference Protocol (KServe V2 REST) server, through an in-process WSGI client."""

from __future__ import annotations

import numpy as np
import pytest
from werkzeug.test import Client

from h3spark.serve import InferenceApp


@pytest.fixture
def client(served):
    return Client(InferenceApp({"digits": served}))


def infer(client, tensor: dict, path: str = "/v2/models/digits/infer", **request):
    return client.post(path, json={"inputs": [tensor], **request})


def rows(count: int) -> np.ndarray:
    return np.random.default_rng(count).random((count, 64), dtype=np.float32)


def test_health_and_server_metadata(client):
    assert client.get("/v2/health/live").json == {"live": True}
    assert client.get("/v2/health/ready").json == {"ready": True}
    assert client.get("/v2").json["name"] == "h3spark"


def test_model_metadata_and_readiness(client):
    assert client.get("/v2/models/digits").json == {
        "name": "digits", "versions": ["42"], "platform": "h3spark_numpy",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 1, 8, 8]}],
        "outputs": [{"name": "probabilities", "datatype": "FP32", "shape": [-1, 10]},
                    {"name": "label", "datatype": "INT64", "shape": [-1]}]}
    assert client.get("/v2/models/digits/ready").json == {"name": "digits", "ready": True}
    assert client.get("/v2/models/digits/versions/42/ready").status_code == 200


@pytest.mark.parametrize("shape,nested", [([3, 64], False), ([3, 64], True), ([3, 1, 8, 8], True)])
def test_infer_answers_probabilities_and_labels_as_the_model_does(client, served, shape, nested):
    x = rows(3)
    data = x.reshape(shape).tolist() if nested else x.reshape(-1).tolist()
    response = infer(client, {"name": "input", "shape": shape, "datatype": "FP32", "data": data}, id="r-1")
    assert response.status_code == 200
    body = response.json
    assert body["model_name"] == "digits" and body["model_version"] == "42" and body["id"] == "r-1"
    probabilities, label = body["outputs"]
    expected = served.predict(x)
    assert probabilities["name"] == "probabilities" and probabilities["datatype"] == "FP32"
    assert probabilities["shape"] == [3, 10] and np.allclose(probabilities["data"], expected.reshape(-1))
    assert label == {"name": "label", "datatype": "INT64", "shape": [3], "data": expected.argmax(axis=1).tolist()}


def test_fp64_and_int64_inputs_and_a_chosen_output(client, served):
    x = np.arange(128).reshape(2, 64) % 17
    for datatype in ("INT64", "FP64"):
        response = infer(client, {"name": "input", "shape": [2, 64], "datatype": datatype, "data": x.tolist()},
                         outputs=[{"name": "label"}])
        assert response.status_code == 200, response.json
        assert response.json["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [2],
                                             "data": served.predict(x).argmax(axis=1).tolist()}]


@pytest.mark.parametrize("tensor,message", [
    ({"name": "input", "shape": [2, 63], "datatype": "FP32", "data": [0.0] * 126},
     "input tensor 'input' of model 'digits' has shape [2, 63]; the model expects shape [-1, 1, 8, 8] or [-1, 64]"),
    ({"name": "input", "shape": [2, 64], "datatype": "BYTES", "data": [0.0] * 128},
     "input tensor 'input' of model 'digits' has datatype 'BYTES'; it must be one of FP32, FP64, INT64"),
    ({"name": "input", "shape": [2, 64], "datatype": "INT64", "data": [0.5] * 128},
     "input tensor 'input' of model 'digits' has datatype INT64, but its data holds numbers that are not integers"),
    ({"name": "input", "shape": [3, 64], "datatype": "FP32", "data": [0.0] * 128},
     "input tensor 'input' of model 'digits' has shape [3, 64] (192 values), but its data holds 128 values"),
    ({"name": "input", "shape": [3, 64], "datatype": "FP32", "data": [[0.0] * 64] * 2},
     "input tensor 'input' of model 'digits' has shape [3, 64], but its data is nested as [2, 64]"),
    ({"name": "input", "shape": [2, 64], "datatype": "FP32", "data": [[0.0] * 64, [0.0] * 3]},
     "its data must be numbers, a flat list or a list nested as its shape [2, 64]"),
    ({"name": "input", "shape": [1, 64], "datatype": "FP32", "data": ["a"] * 64},
     "its data must be numbers"),
    ({"name": "image", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64},
     "model 'digits' has no input tensor 'image'; it takes 'input' of datatype FP32, FP64 or INT64 and shape "
     "[-1, 1, 8, 8] or [-1, 64]"),
    ({"name": "input", "shape": "1x64", "datatype": "FP32", "data": [0.0] * 64},
     "input tensor 'input' of model 'digits' needs a shape: a list of sizes"),
])
def test_a_wrong_shape_datatype_or_data_is_a_400_naming_the_tensor_and_what_fits(client, tensor, message):
    response = infer(client, tensor)
    assert response.status_code == 400
    assert message in response.json["error"]


def test_malformed_requests_are_400s_that_say_what_a_request_is(client):
    assert "not JSON" in client.post("/v2/models/digits/infer", data=b"{").json["error"]
    assert "must be a JSON object" in client.post("/v2/models/digits/infer", json=[1]).json["error"]
    response = client.post("/v2/models/digits/infer", json={"inputs": []})
    assert response.status_code == 400 and "takes one input tensor" in response.json["error"]
    response = infer(client, {"name": "input", "shape": [1, 64], "datatype": "FP32", "data": [0.0] * 64},
                     outputs=[{"name": "logits"}])
    assert "has no output tensor 'logits'; its outputs are probabilities, label" in response.json["error"]
    response = client.post("/v2/models/digits/infer", data=b"{}", headers={"Inference-Header-Content-Length": "2"})
    assert response.status_code == 400 and "binary tensor data extension" in response.json["error"]


def test_unknown_models_versions_paths_and_methods(client):
    assert client.get("/v2/models/cats").status_code == 404
    assert "this server has digits" in client.get("/v2/models/cats/ready").json["error"]
    assert client.get("/v2/models/digits/versions/7").json["error"] == \
        "model 'digits' has no version '7'; it has version 42."
    assert client.get("/v1/models/digits").status_code == 404
    assert client.get("/v2/models/digits/infer").status_code == 405


def test_no_rows_answer_empty_outputs(client):
    response = infer(client, {"name": "input", "shape": [0, 64], "datatype": "FP32", "data": []})
    assert response.status_code == 200
    assert [output["shape"] for output in response.json["outputs"]] == [[0, 10], [0]]
