"""The transport contract (tests/unit/actors/contract.py) against the in-process bus."""

from tests.unit.actors.contract import *  # noqa: F401,F403 (the contract's tests and the topic fixture)
from tests.unit.actors.contract import transport_fixture

make_transport = transport_fixture("memory")
