"""One page's connection: who it is (viewer or worker, with the token or not), what it may do, and what
it is sent (replies at once; updates at most ``push_hz`` times a second).

Every message is counted against the connection's token bucket. A message the bridge refuses (not
JSON, an unknown type, a write without the token, a bad frame, over the rate) gets an error frame
(``{"type": "error", "code", "message", "ref"}``) and a log line; the connection stays open, except
after a wrong token.
"""

from __future__ import annotations

import asyncio
import collections
import hmac
import json
import logging

import numpy as np

from h3spark.errors import DataError, UsageError
from h3spark.web._frames import (DATA, EXAMPLES, GRADIENTS, WEIGHTS, FrameError, decode_frame, encode_frame,
                                 error_message, kind_name, parse_message)
from h3spark.web._limits import Outbox, TokenBucket

logger = logging.getLogger(__name__)

POLICY_VIOLATION = 1008
MAX_PIXEL = 255.0


class Session:
    """Reads one connection's messages and answers them; ``run`` returns when the page goes."""

    def __init__(self, hub, connection, token: str):
        self.hub, self.connection, self._token = hub, connection, token
        config = hub.config
        self.bucket = TokenBucket(config.max_messages_per_s, config.burst)
        self.outbox = Outbox(config.push_hz)
        self.authenticated = False
        self.role: str | None = None
        self.worker = None
        self.peer = f"{connection.remote_address}"
        self._replies: collections.deque = collections.deque()
        self._wake = asyncio.Event()
        self._limited = False
        self._handlers = {"hello": (self.on_hello, None), "predict": (self.on_predict, "token"),
                          "join": (self.on_join, "master"), "pull": (self.on_pull, "worker"),
                          "progress": (self.on_progress, "worker"), "done": (self.on_done, "worker"),
                          "set": (self.on_set, "master"), "reset": (self.on_reset, "master")}

    async def run(self) -> None:
        flusher = asyncio.create_task(self._flush())
        try:
            async for message in self.connection:
                await self.receive(message)
        finally:
            self.hub.sessions.discard(self)
            flusher.cancel()
            if self.worker is not None:
                self.hub.master.leave(self.worker.id)

    # --- sending ------------------------------------------------------------------------------

    def send_later(self, message: dict | bytes) -> None:
        """Queue a reply (sent before any waiting update)."""
        self._replies.append(message if isinstance(message, bytes) else json.dumps(message))
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    async def _flush(self) -> None:
        try:
            await self._push_forever()
        except Exception as error:  # noqa: BLE001 - the page went; run() ends the session
            logger.info("stopped pushing to a page: %s peer=%s", error, self.peer)

    async def _push_forever(self) -> None:
        while True:
            timeout = self.outbox.wait_s() if self.outbox.waiting else None
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except TimeoutError:
                pass
            self._wake.clear()
            while self._replies:
                await self.connection.send(self._replies.popleft())
            update = self.outbox.take() if self.role is not None else None
            if update is not None:
                await self.connection.send(json.dumps(update))

    async def refuse(self, code: str, message: str, ref: str | None) -> None:
        logger.warning("refused a message (%s): %s ref=%s peer=%s", code, message, ref, self.peer)
        await self.connection.send(error_message(code, message, ref))

    # --- receiving ------------------------------------------------------------------------------

    async def receive(self, message: str | bytes) -> None:
        ref = kind_name(message) if isinstance(message, bytes) else None
        if not self.bucket.take():
            if not self._limited:  # one line per burst over the rate, not one per message
                logger.warning("over the rate of %g messages/s; refusing until it slows peer=%s",
                               self.hub.config.max_messages_per_s, self.peer)
            self._limited = True
            await self.connection.send(error_message("rate_limited", f"over {self.hub.config.max_messages_per_s:g} "
                                                     "messages a second; slow down", ref))
            return
        self._limited = False
        try:
            if isinstance(message, bytes):
                await self.on_binary(message)
            else:
                parsed = parse_message(message, self.hub.config.max_text_bytes)
                ref = parsed["type"]
                await self.dispatch(parsed)
        except FrameError as error:
            await self.refuse(error.code, str(error), ref)
        except (UsageError, DataError) as error:
            await self.refuse("bad_request", str(error), ref)
        except Exception as error:  # noqa: BLE001 - a page must never crash the bridge; logged with its traceback
            logger.exception("failed to handle a message ref=%s peer=%s", ref, self.peer)
            await self.connection.send(error_message("internal", f"the bridge failed on this message: {error}", ref))

    async def dispatch(self, message: dict) -> None:
        kind = message["type"]
        if kind not in self._handlers:
            raise FrameError("unknown_type", f"unknown message type {kind!r}; the types are {', '.join(self._handlers)}")
        handler, needs = self._handlers[kind]
        if kind != "hello" and self.role is None:
            raise FrameError("no_hello", 'say hello first: {"type": "hello", "role": "viewer" or "worker", "token": ...}')
        self._require(needs, kind)
        await handler(message)

    def _require(self, needs: str | None, kind: str) -> None:
        """``needs``: None (anyone), "token", "master" (the token and a master), "worker" (and to have joined)."""
        if needs is None:
            return
        if not self.authenticated:
            raise FrameError("unauthorized", f"{kind!r} changes something, so it needs the token: open the URL the "
                                             "bridge printed (it ends with #token=...), or say hello with the token")
        if needs in ("master", "worker") and self.hub.master is None:
            raise FrameError("no_master", "this bridge runs no Downpour master (add web.downpour to the config)")
        if needs == "worker" and self.worker is None:
            raise FrameError("not_joined", f"{kind!r} is for a worker: send {{\"type\": \"join\"}} first")

    async def on_binary(self, data: bytes) -> None:
        self._require("worker", "a binary frame")
        master = self.hub.master
        width = master.data.raw_width if master.data is not None else master.spec.features
        frame = decode_frame(data, master.layout.size, width)
        if frame.kind == GRADIENTS:
            result = master.apply(frame, self.worker)
            await self.connection.send(json.dumps({"type": "ack", **result}))
        elif frame.kind == EXAMPLES:
            await self._examples(frame)
        else:
            raise FrameError("bad_frame", f"a worker sends gradients ({GRADIENTS}) or examples ({EXAMPLES}) frames; "
                                          f"got kind {frame.kind}")

    async def _examples(self, frame) -> None:
        master = self.hub.master
        if master.data is None:
            raise FrameError("no_pipeline", "the master has no data, so no pipeline for a user's examples")
        labels = frame.labels.astype(np.int64)
        if labels.min() < 0 or labels.max() >= master.spec.classes:
            raise FrameError("bad_frame", f"labels are classes 0..{master.spec.classes - 1}; got {sorted(set(labels))}")
        features, kept, refused = master.data.preprocess(np.asarray(frame.values), labels)
        self.worker.examples += len(features)
        await self.connection.send(json.dumps({"type": "examples", "kept": len(features), "refused": refused}))
        if len(features):
            await self.connection.send(encode_frame(DATA, features, rows=len(features), labels=kept))

    # --- text messages ------------------------------------------------------------------------

    async def on_hello(self, message: dict) -> None:
        role, token = message.get("role", "viewer"), message.get("token")
        if role not in ("viewer", "worker"):
            raise FrameError("bad_message", f"role is viewer or worker; got {role!r}")
        if token is not None:
            if not isinstance(token, str) or not hmac.compare_digest(token.encode(), self._token.encode()):
                await self.refuse("unauthorized", "wrong token; the bridge printed its token when it started", "hello")
                await self.connection.close(POLICY_VIOLATION, "wrong token")
                return
            self.authenticated = True
        self.role = role
        self.hub.sessions.add(self)
        await self.connection.send(json.dumps(self.hub.welcome(self)))

    async def on_predict(self, message: dict) -> None:
        client_id = str(message.get("id", ""))[:64]
        expected = self.hub.raw_width()
        pixels = message.get("pixels")
        if (not isinstance(pixels, list) or len(pixels) != expected
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pixels)):
            raise FrameError("bad_message", f"pixels is a list of {expected} numbers (0 to 16 for digits)")
        values = np.asarray(pixels, dtype=np.float64)
        if not np.isfinite(values).all() or values.min() < 0 or values.max() > MAX_PIXEL:
            raise FrameError("bad_message", f"pixels are finite numbers from 0 to {MAX_PIXEL:g}")
        for answer in self.hub.predict(self, client_id, values):
            await self.connection.send(json.dumps(answer))

    async def on_join(self, message: dict) -> None:
        if self.worker is not None:
            raise FrameError("bad_message", f"this connection is worker {self.worker.id} already")
        settings, data = message.get("settings", {}), message.get("data", "shard")
        if not isinstance(settings, dict) or data not in ("shard", "own"):
            raise FrameError("bad_message", 'join takes "settings" (an object) and "data" ("shard" or "own")')
        master = self.hub.master
        self.worker = master.join(settings, own_data=data == "own")
        worker = self.worker
        rows = 0
        if worker.shard is not None:
            features, labels = master.data.shard(worker.shard)
            rows = len(labels)
        await self.connection.send(json.dumps({"type": "joined", "worker": worker.id, "shard": worker.shard,
                                               "rows": rows, "settings": worker.settings}))
        if rows:
            await self.connection.send(encode_frame(DATA, features, rows=rows, labels=labels))
        await self.on_pull(message)

    async def on_pull(self, message: dict) -> None:
        version, weights = self.hub.master.pull()
        await self.connection.send(encode_frame(WEIGHTS, weights, version=version))

    async def on_progress(self, message: dict) -> None:
        loss = message.get("loss")
        if isinstance(loss, (int, float)) and not isinstance(loss, bool) and np.isfinite(loss):
            self.worker.loss = float(loss)

    async def on_done(self, message: dict) -> None:
        self.worker.done = True
        logger.info("worker %s finished its epochs peer=%s", self.worker.id, self.peer)

    async def on_set(self, message: dict) -> None:
        settings = message.get("settings")
        if not isinstance(settings, dict):
            raise FrameError("bad_message", 'set takes "settings": {"lr": 0.05, ...}')
        self.hub.broadcast_state("settings", self.hub.master.set(settings))

    async def on_reset(self, message: dict) -> None:
        version = self.hub.master.reset(message.get("mean"), message.get("std"))
        self.hub.broadcast_state("settings", self.hub.master.settings())
        await self.connection.send(json.dumps({"type": "reset", "version": version}))
