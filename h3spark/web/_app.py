"""The web app: the bridge, its Downpour master and (``network: run``) the config's actor network, in
this process.

    >>> app = WebApp(config, workdir)            # config.web (defaults without a web: section) and config.actors
    >>> app.start()                              # the page's URL; app.token is the token for writes
    'http://127.0.0.1:8765/'
    >>> app.stop()

``network: run`` starts the actors: section's network here (threads on the in-process bus, or one
process per actor over Kafka) and the bridge reads the same transport; ``join`` follows a network
``h3spark actors CONFIG`` runs elsewhere (Kafka only); ``none`` runs the bridge alone (with its
master, if any) on an in-process bus of its own.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading

from h3spark.actors import MemoryBus, Network, Transport
from h3spark.actors._child import make_transport
from h3spark.actors._network import transport_settings
from h3spark.config import H3SparkConfig, WebConfig
from h3spark.errors import ConfigError, UsageError
from h3spark.web._bridge import ActorBridge, network_graph
from h3spark.web._dataset import MasterData
from h3spark.web._downpour import DownpourMaster
from h3spark.web._hub import Hub
from h3spark.web._server import WebServer

logger = logging.getLogger(__name__)

MIN_TOKEN_CHARS = 16


def web_token(config: WebConfig) -> tuple[str, str]:
    """The token for writes and where it came from: the environment variable ``token_env``, else drawn."""
    given = os.environ.get(config.token_env)
    if given is None:
        return secrets.token_urlsafe(24), "drawn at start"
    if len(given) < MIN_TOKEN_CHARS or not given.isprintable() or " " in given:
        raise UsageError(f"${config.token_env} holds a token of {len(given)} characters; a token has at least "
                         f"{MIN_TOKEN_CHARS} printable characters and no spaces (or unset it to draw one).")
    return given, f"from ${config.token_env}"


class WebApp:
    """Everything ``h3spark web CONFIG`` runs."""

    def __init__(self, config: H3SparkConfig, workdir: str, token: str | None = None, progress=logger.info):
        self.config, self.workdir, self.progress = config, str(workdir), progress
        self.web = config.web or WebConfig()
        if config.actors is None and self.web.downpour is None:
            raise ConfigError(config.name, ["h3spark web needs an actors: section (the network it shows) or "
                                            "web.downpour (a master for browser workers); see conf/web_digits.yaml."])
        mode = self.web.network if config.actors is not None else "none"
        if mode == "join" and config.actors.transport == "memory":
            raise ConfigError(config.name, ["web.network: join follows a network running in another process, which "
                                            "the in-process bus cannot reach; set actors.transport: kafka, or "
                                            "web.network: run."])
        self.mode = mode
        self.token, self.token_source = (token, "given") if token is not None else web_token(self.web)
        self.transport: Transport | None = None
        self.network: Network | None = None
        self.server: WebServer | None = None
        self.bridge: ActorBridge | None = None
        self.master: DownpourMaster | None = None
        self._stop = threading.Event()
        self._follower: threading.Thread | None = None

    def start(self) -> str:
        """Serve, follow the network, and start it (``network: run``); the page's URL."""
        url = self.serve()
        self.start_network()
        return url

    def serve(self) -> str:
        """Build the master, serve the pages and the WebSocket, follow the network's topics; the page's URL."""
        downpour = self.web.downpour
        if downpour is not None:
            self.master = DownpourMaster(downpour, MasterData.from_config(downpour, self.workdir))
        section = self.config.actors if self.mode != "none" else None
        self.transport = make_transport(transport_settings(section)) if section is not None else MemoryBus()
        self.bridge = ActorBridge(self.transport, self.config.name, section, self.web.predict_topic, self.web.follow)
        hub = Hub(self.web, self.config.name, network_graph(section), self.bridge, self.master)
        self.server = WebServer(self.web, self.token, hub)
        url = self.server.start()
        self.bridge.start(hub.from_thread)
        return url

    def start_network(self) -> None:
        """With ``network: run``, start the actors: section's network here (its progress lines to ``progress``)."""
        if self.mode == "run" and self.network is None:
            self.network = Network.from_config(self.config, self.workdir, transport=self.transport,
                                               progress=self.progress)
            self.network.start()
            self._follower = threading.Thread(target=self._follow, name="h3spark-web-network", daemon=True)
            self._follower.start()

    def _follow(self) -> None:
        while not self._stop.is_set():
            self.network.poll(timeout_s=0.2)

    def page_url(self, page: str = "") -> str:
        """The URL of ``page`` ('' or 'worker') with the token in its fragment (never sent to a server)."""
        return f"{self.server.url}{page}#token={self.token}"

    def stop(self) -> None:
        """Stop the network's actors, the bridge and the server; close the transport."""
        self._stop.set()
        if self._follower is not None:
            self._follower.join(30)
        if self.network is not None:
            self.network.stop()
            self.network.close()
        if self.bridge is not None:
            self.bridge.stop()
        if self.server is not None:
            self.server.stop()
        if self.transport is not None:
            self.transport.close()
