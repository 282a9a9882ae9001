"""Models out: batch inference on Spark (``h3spark predict``), an Open Inference Protocol (KServe V2)
HTTP server (``h3spark serve``) and predictions over request and reply topics.

    >>> from h3spark.serve import find_model, predict
    >>> model = find_model("checkpoints/digits", workdir="/tmp/work").load()   # any engine, or sklearn
    >>> model.predict(features)                                               # (N, classes) probabilities
    >>> predict(config, workdir="/tmp/work").summary()                         # the predict: section on Spark
    >>> InferenceServer(InferenceApp({"digits": model}), port=8000).serve_forever()
"""

from h3spark.serve._batch import PREDICTION_COLUMNS, BatchPredictor, PredictedBlock, feature_matrix, for_prediction
from h3spark.serve._http import DEFAULT_HOST, DEFAULT_PORT, InferenceApp, InferenceServer
from h3spark.serve._model import ContractModel, EstimatorModel, ModelFile, ServedModel, find_model
from h3spark.serve._predict import PredictResult, model_uri, predict
from h3spark.serve._topics import PredictionResponder, ReplyWaiter, send_request
from h3spark.serve._v2 import INPUT_NAME, OUTPUT_NAMES, InferRequest, ProtocolError, infer_response, metadata, parse_infer

__all__ = ["PREDICTION_COLUMNS", "BatchPredictor", "PredictedBlock", "feature_matrix", "for_prediction", "DEFAULT_HOST",
           "DEFAULT_PORT", "InferenceApp", "InferenceServer", "ContractModel", "EstimatorModel", "ModelFile",
           "ServedModel", "find_model", "PredictResult", "model_uri", "predict", "PredictionResponder", "ReplyWaiter",
           "send_request", "INPUT_NAME", "OUTPUT_NAMES", "InferRequest", "ProtocolError", "infer_response", "metadata",
           "parse_infer"]
