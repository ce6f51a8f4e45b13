"""Fixtures for engine tests: a real simulator on a loopback port, with a manual clock.

* ``simulator`` -> a started :class:`SimulatorServer` (``.url``, ``.sim``); the
  simulator's clock is a :class:`ManualClock`: move it with ``simulator.sim.clock.advance(s)``.
* ``sim_token`` -> the token the simulator accepts.
* ``make_app(tag="v1.0.0", *, name=None, build_seconds=0, deploy_seconds=0,
  scenario=None, spec=None)`` -> app dict of a new app already live on ``tag``
  (spec from :func:`engine.tests.common.sample_spec`, unique name by default).
* ``sample_spec`` -> the :func:`engine.tests.common.sample_spec` function.
* ``closed_port`` -> a loopback port nobody listens on: connections are refused.
* ``syn_dropping_url`` -> ``http://127.0.0.1:<port>`` of a listener whose accept queue
  is full: it drops SYNs, so connecting times out.
"""

import itertools
import socket

import pytest

from engine.simulator import DEFAULT_TOKEN, ManualClock, Simulator, SimulatorServer
from engine.tests.common import sample_spec as _sample_spec


@pytest.fixture
def simulator():
    server = SimulatorServer(Simulator(clock=ManualClock())).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def sim_token():
    return DEFAULT_TOKEN


@pytest.fixture
def sample_spec():
    return _sample_spec


@pytest.fixture
def make_app(simulator):
    numbers = itertools.count(1)

    def make(tag="v1.0.0", *, name=None, build_seconds=0, deploy_seconds=0, scenario=None,
             spec=None):
        spec = spec or _sample_spec(tag, name=name or f"odoo-test-{next(numbers)}")
        return simulator.sim.create_app(spec, build_seconds=build_seconds,
                                        deploy_seconds=deploy_seconds, scenario=scenario)

    return make


@pytest.fixture
def closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def syn_dropping_url():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        fillers = []
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(listener.getsockname())
            fillers.append(filler)
        try:
            yield f"http://127.0.0.1:{listener.getsockname()[1]}"
        finally:
            for filler in fillers:
                filler.close()
