"""Low-level transports that the layers above share.

    >>> from h3spark.transport import new_token, take_token
    >>> token = new_token()
    >>> take_token({"token": token, "kind": "started"}, token)
    True

``new_token``/``take_token``: the shared secret that every driver-side channel (the training
launcher's, the experiments' dispatcher) requires in each message. ``h3spark.transport.kafka``:
the one home of kafka-python, imported lazily with an install hint.
"""

from h3spark.transport import kafka
from h3spark.transport._token import TOKEN_FIELD, new_token, take_token

__all__ = ["TOKEN_FIELD", "kafka", "new_token", "take_token"]
