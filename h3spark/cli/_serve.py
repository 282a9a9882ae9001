"""``h3spark serve MODEL``: a trained model over HTTP (Open Inference Protocol / KServe V2), or over
Kafka request and reply topics with ``--kafka``."""

from __future__ import annotations

import re
import signal

from h3spark.errors import UsageError


def register(subparsers, common) -> None:
    from h3spark.serve import DEFAULT_HOST, DEFAULT_PORT

    parser = subparsers.add_parser(
        "serve", parents=[common.plain], help="serve a trained model over HTTP (KServe V2) or Kafka topics",
        description="Serve a trained model (any engine, or scikit-learn from an h3spark experiment) with the Open "
                    "Inference Protocol: GET /v2/health/live, /v2/health/ready, /v2/models/NAME[/ready], POST "
                    "/v2/models/NAME/infer. Example: h3spark serve h3spark-work/checkpoints/digits --name digits")
    parser.add_argument("model", metavar="MODEL", help="a model file, a training run's checkpoints or an experiment's folder")
    parser.add_argument("--name", help="the model's name in URLs (default: from MODEL's path)")
    parser.add_argument("--engine", choices=["numpy", "mxnet", "torch"], help="run a neural model in this engine")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}; the server "
                        "has no authentication)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: a free one)")
    parser.add_argument("--kafka", metavar="HOST:PORT", help="answer requests from Kafka topics instead of HTTP")
    parser.add_argument("--requests", metavar="TOPIC", help="with --kafka: the request topic (default NAME.requests)")
    parser.add_argument("--replies", metavar="TOPIC", help="with --kafka: the reply topic (default NAME.replies)")
    parser.set_defaults(func=_serve)


def _serve(args) -> int:
    from h3spark.serve import find_model

    if (args.requests or args.replies) and not args.kafka:
        raise UsageError("--requests and --replies go with --kafka HOST:PORT (the broker to answer on).")
    model_file = find_model(args.model, engine=args.engine)
    model = model_file.load()  # an unreadable model stops here, before anything listens
    name = args.name or model_name(args.model)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise UsageError(f"--name {name!r}: a model's name must start with a letter or digit and use only letters, "
                         "digits, '_', '.' and '-' (it goes into URLs and topic names).")
    where = f"model {name} ({model.engine}, version {model.version}, input {model.shapes()}, " \
            f"{len(model.classes)} classes) from {model_file.uri}"
    signal.signal(signal.SIGTERM, _interrupt)  # a supervisor's stop ends it as Ctrl-C does: cleanly, exit 0
    if args.kafka:
        return _serve_kafka(args, model, name, where)
    return _serve_http(args, model, name, where)


def _serve_http(args, model, name: str, where: str) -> int:
    from h3spark.serve import InferenceApp, InferenceServer

    try:
        server = InferenceServer(InferenceApp({name: model}), host=args.host, port=args.port)
    except OSError as error:
        raise UsageError(f"cannot listen on {args.host}:{args.port} ({error.strerror or error}); choose another "
                         "--port (0: a free one) or --host.") from None
    print(f"h3spark serve: {where}\n  {server.url}/v2/models/{name}/infer  (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("h3spark serve: stopped")
    return 0


def _serve_kafka(args, model, name: str, where: str) -> int:
    import threading

    from h3spark.actors import KafkaTransport
    from h3spark.serve import PredictionResponder

    requests, replies = args.requests or f"{name}.requests", args.replies or f"{name}.replies"
    transport = KafkaTransport(args.kafka)
    responder = PredictionResponder(transport, model, name, requests, replies).start()
    print(f"h3spark serve: {where}\n  requests {requests} -> replies {replies} on {args.kafka}  (Ctrl-C stops)",
          flush=True)
    try:
        responder.run(threading.Event())
    except KeyboardInterrupt:
        print(f"h3spark serve: stopped after {responder.answered} answers ({responder.refused} refused)")
    finally:
        transport.close()
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def model_name(path: str) -> str:
    """A URL-safe name from a model's path: a checkpoints or experiment folder's name, or the file's
    folder when the file is model.* (``checkpoints/digits`` -> digits, ``exp/best_model/model.joblib`` -> exp)."""
    parts = [part for part in re.split(r"[/\\]+", path.rstrip("/\\")) if part and part not in (".", "..")]
    while len(parts) > 1 and (re.match(r"(model|best_model)(\.|$)", parts[-1]) or re.match(r"(run|step)-\d+$", parts[-1])):
        parts.pop()
    base = re.sub(r"\.(safetensors|joblib)$", "", parts[-1] if parts else "model")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", base).lstrip("-_.") or "model"
