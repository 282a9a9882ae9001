"""The web side of the actor network: a WebSocket bridge, a live page, and browser windows as Downpour
SGD workers (docs/web.md).

    >>> app = WebApp(config, workdir)           # the web: section, and the actors: section's network
    >>> app.start()                             # serves the page, the worker page and /ws
    'http://127.0.0.1:8765/'
    >>> app.page_url("worker")                  # with the token for writes in the fragment
    'http://127.0.0.1:8765/worker#token=...'

- :class:`WebServer`: the page and the WebSocket on one port (the ``websockets`` library), its
  Host/Origin checks; :class:`Session`: one connection (token, rate limit, throttled updates).
- :class:`ActorBridge`: the bridge as an actor: follows reports, predictions and validation
  results, sends drawn digits to the actors as raw records.
- :class:`DownpourMaster`: the weights in the parameter store; pushes applied with DC-ASGD's
  true-delay compensation, or refused past ``max_delay``; :class:`MasterData`: its shards and pipeline.
- :func:`encode_frame`, :func:`decode_frame`, :class:`Layout`: the binary frames (float32).
"""

from h3spark.web._app import WebApp, web_token
from h3spark.web._bridge import ActorBridge, followed_topics, network_graph
from h3spark.web._dataset import MasterData, rows_table
from h3spark.web._downpour import LIVE_SETTINGS, WORKER_SETTINGS, DownpourMaster, WorkerInfo, web_spec
from h3spark.web._frames import (DATA, EXAMPLES, GRADIENTS, HEADER, MAGIC, WEIGHTS, Frame, FrameError, Layout,
                                 decode_frame, encode_frame, parse_message)
from h3spark.web._hub import Hub
from h3spark.web._limits import Outbox, TokenBucket
from h3spark.web._server import WebServer, static_files
from h3spark.web._session import Session

__all__ = ["WebApp", "web_token", "ActorBridge", "followed_topics", "network_graph", "MasterData", "rows_table",
           "LIVE_SETTINGS", "WORKER_SETTINGS", "DownpourMaster", "WorkerInfo", "web_spec", "DATA", "EXAMPLES",
           "GRADIENTS", "HEADER", "MAGIC", "WEIGHTS", "Frame", "FrameError", "Layout", "decode_frame", "encode_frame",
           "parse_message", "Hub", "Outbox", "TokenBucket", "WebServer", "static_files", "Session"]
