"""DigitalOcean App Platform simulator: the ``/v2/apps`` and registry subset of the
official API, served over real HTTP so the production client (or pydo) can talk
to it unchanged.

Public API::

    from engine.simulator import Simulator, SimulatorServer, DEFAULT_TOKEN, ManualClock
    sim = Simulator(tokens=None, clock=None, rate_limit_per_minute=250, rate_limit_per_hour=5000)
    with SimulatorServer(sim, port=0) as server:   # server.url, server.sim
        app = sim.create_app(spec, build_seconds=20, deploy_seconds=10)
        sim.clock.advance(30)

Deployments are computed lazily from the clock: PENDING_BUILD (first 10% of
``build_seconds``), BUILDING, PENDING_DEPLOY (first 10% of ``deploy_seconds``),
DEPLOYING, then ACTIVE (or ERROR / CANCELED / SUPERSEDED). A deployment created
while another runs supersedes it; a newer deployment going ACTIVE supersedes
the previously active one. Progress has one leaf step per build/deploy slot,
so ``success_steps == total_steps`` exactly when ACTIVE and ``error_steps > 0``
on ERROR, CANCELED and in-flight SUPERSEDED deployments.

Choices where DigitalOcean documents nothing:

* Creating a deployment (create, update, restart, rollback) while a rollback is
  pinned answers 400 ``bad_request`` naming the pinned deployment.
* ``quota`` answers 422 ``unprocessable_entity`` with a message about the
  account's quota/limit (DO uses 422 for droplet limits).
* SECRET env values and image registry credentials are encrypted on submission
  into strings shaped like DigitalOcean's (``EV[1:<nonce>:<sealed>]``, see
  ``sealing.py``) and only ever returned so. An encrypted value sent back is kept
  as it is if it decrypts with the simulator's key, else the request answers 400
  ``bad_request`` naming the field; a plain value sent again is encrypted anew
  (a change: the update deploys). ``Simulator.plain_envs(app_id)`` shows what the
  live containers see.
* Invalid specs answer 400 ``bad_request`` naming only the first problem,
  e.g. ``error validating app spec field "services[0].instance_size_slug": ...``.
* Unknown ids (malformed or not) answer 404 ``not_found``; a name already used
  by another app answers 409 ``conflict`` (doctl special-cases 409).
* Logs of a phase the deployment never reached answer 400 (as app_action
  expects); ``historic_urls`` point at ``<server>/_logs/<deployment>/<component
  or _all>/<TYPE>.log``; ``live_url`` is empty.
* A DOCR image in a repository the registry knows must have its tag (or
  digest) pushed, else the deployment fails as ``image-missing``. Unknown
  repositories are not checked. :meth:`Simulator.create_app` pushes its tags.
* ``Simulator.create_app`` (and ``POST /_sim/apps``) returns an app whose first
  deployment is already ACTIVE; its timing and scenario apply to the
  deployments that follow. ``POST /v2/apps`` uses the simulator's default
  timing for the first deployment too.

Failing deployments carry ``progress`` steps with ``reason.code``:

=====================  =================================  =========================
scenario               failing step (phase when it fails)  reason code
=====================  =================================  =========================
image-missing          build/components/<c> (BUILDING)     ImagePullFailed (message
                                                           starts ``IMAGE_PULL:``)
build-fail             build/components/<c> (BUILDING)     BuildJobExitNonZero
deploy-fail            deploy/components/<c>/deploy        DeployContainerExitNonZero
health-check-timeout   deploy/components/<c>/wait          DeployContainerHealthChecks
                                                           Failed
=====================  =================================  =========================

Scenarios, selected with ``sim.set_scenario(name, app_id=..., tag=..., **params)``
(``POST /_sim/scenarios``; neither app nor tag: every app), or by an image tag
ending in ``--<name>`` (``v1.4.0--build-fail``). ``count=N`` makes any scenario
fire N times only; ``operation=<operationId>`` restricts request scenarios.
Request scenarios chosen by a tag suffix are transient, as DigitalOcean's are:
each deployment of the tagged spec arms them with their default count for the
requests naming that app, and once spent the app answers normally again
(``GET /_sim/scenarios`` lists the armed ones as ``app:<id> tag:<tag>``).

* ``build-fail`` / ``deploy-fail`` / ``image-missing`` / ``health-check-timeout``:
  new deployments end in ERROR as in the table above; build logs name the
  failing step, deploy logs the crash or the failed readiness probe.
* ``version-not-switched``: the deployment goes ACTIVE but the app's
  ``active_deployment`` and the ingress stay on the previous version.
* ``quota``: create app / update / create deployment / rollback answer 422.
* ``health-fail-once``: the ingress health endpoints answer 503 once per
  version, then OK. ``health-fail-always``: always 503.
* ``health-slow`` (``delay``, default 2 s): health endpoints answer late.
* ``db-down``: ``/api/v1/health`` answers 503 ``{"status":"error","database":"unreachable"}``.
* ``endpoint-missing`` (``path``, default ``/web/login``; a list also works): 404.
* ``static-missing``: ``/web/static/...`` answers 404.
* ``api-error`` (``status``, default 500): ``/api/...`` answers that status with
  ``{"status":"error"}`` (status 200 gives a 200 with status "error").
* ``slow-endpoints`` (``delay``, default 2 s): login, selector and static answer late.
* ``rate-limit-burst`` (``count`` 3, ``retry_after`` 1): the next /v2 requests get 429.
* ``server-error`` (``count`` 1): the next /v2 requests get 500 ``server_error``.
* ``drop-connection`` (``count`` 1): the next /v2 requests get their socket closed
  without a response.
* ``malformed-body`` (``count`` 1): the next 200 /v2 responses are not JSON.
  With ``apply=True``, ``server-error`` and ``drop-connection`` first carry the
  request out (a create that "failed" but happened).
* ``log-hang`` (``delay``, default 30 s, at most 60): log URLs answer only after
  the delay (cut short when the server stops).

Control API (no auth, JSON) mirrors the Python methods: ``POST /_sim/apps``
(returns the bare app dict), ``GET /_sim/apps/<id>``, ``POST /_sim/apps/<id>/timing``,
``POST /_sim/scenarios`` (``{"scenario", "app_id"|"tag", ...params}``),
``GET /_sim/scenarios``, ``POST /_sim/registry/tags``, ``POST /_sim/clock/advance``,
``GET /_sim/clock``, ``GET /_sim/stats``, ``POST /_sim/reset``.

Fake ingress ``<url>/_ingress/<app_id>`` (the app's ``default_ingress`` and
``live_url``) serves the live deployment: ``/api/v1/health``, ``/web/health``,
``/web/login``, ``/web/database/selector``, ``/web/static/...``, each with an
``X-Deployment-ID`` header. Version: env ``DO_DEPLOY_VERSION`` of the first
service, else its image tag.
"""

from .app import DEFAULT_TOKEN, SCENARIOS, DropConnection, Simulator
from .clock import ManualClock, OffsetClock
from .server import SimulatorServer

__all__ = ["DEFAULT_TOKEN", "SCENARIOS", "DropConnection", "ManualClock", "OffsetClock",
           "Simulator", "SimulatorServer"]
