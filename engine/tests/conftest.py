"""Fixtures for engine tests: a real simulator on a loopback port, with a manual clock.

* ``simulator`` -> a started :class:`SimulatorServer` (``.url``, ``.sim``); the
  simulator's clock is a :class:`ManualClock`: move it with ``simulator.sim.clock.advance(s)``.
* ``sim_token`` -> the token the simulator accepts.
* ``make_app(tag="v1.0.0", *, name=None, build_seconds=0, deploy_seconds=0,
  scenario=None, spec=None)`` -> app dict of a new app already live on ``tag``
  (spec from :func:`engine.tests.common.sample_spec`, unique name by default).
* ``sample_spec`` -> the :func:`engine.tests.common.sample_spec` function.
"""

import itertools

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
