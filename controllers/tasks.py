"""``/api/v1/tasks/<id>``: read and set a task's deployment state (SOP step 8).

The procedure's step 8 has CI report the outcome on the task:
``{"state": "deployed", "deployment_id": "<id>", "deployed_at": "<ISO 8601>",
"deployed_by": "GitHub Actions"}``. ``state`` is the task's deployment state
(``deploy_state``: none, deploying, deployed, failed, rolled_back), not the
task's own workflow state. ``deployment_id`` is an Odoo deployment id or a
DigitalOcean deployment id. Requests authenticate with an Odoo API key
(Bearer) and run as its user: reading needs Deployment User and read access
to the task, writing also needs write access to it, as in the web client.
"""

from markupsafe import Markup

from odoo import fields, http
from odoo.http import request

from ..models.do_deployment import IN_FLIGHT_STATES
from .common import (
    CONFLICT,
    USER_GROUP,
    VALIDATION_ERROR,
    ApiError,
    api_route,
    authenticate_bearer,
    datetime_json,
    json_api,
    json_response,
    parse_json_object,
    read_body,
    require_group,
)
from .deployments import status_url

TASK_FIELDS = ("state", "deployment_id", "deployed_at", "deployed_by", "version")
IN_PROGRESS = ("queued", *IN_FLIGHT_STATES)


def task_json(task):
    deployment = task.last_deployment_id
    return {
        "id": task.id,
        "name": task.name,
        "state": task.deploy_state,
        "deployment_id": deployment.id or None,
        "deployment": {
            "id": deployment.id,
            "name": deployment.name,
            "state": deployment.state,
            "do_deployment_id": deployment.do_deployment_id or None,
            "status_url": status_url(deployment),
        } if deployment else None,
        "deployed_at": datetime_json(task.deployed_at),
        "deployed_by": task.deployed_by.name or None,
        "deployed_by_id": task.deployed_by.id or None,
        "deployed_version": task.deployed_version or None,
        "stage": task.stage_id.name or None,
    }


class DoDeployTasks(http.Controller):
    @api_route("/api/v1/tasks/<int:task_id>",
               readonly=lambda _controller, _rule, _args: request.httprequest.method == "GET")
    @json_api("GET", "POST")
    def task(self, task_id):
        raw = read_body() if request.httprequest.method == "POST" else b""
        authenticate_bearer()
        require_group(USER_GROUP, "The API key's user is not a Deployment User.")
        task = request.env["project.task"].browse(task_id)
        if not task.exists():
            raise ApiError(404, "TASK_NOT_FOUND", f"Task {task_id} does not exist.")
        task.check_access("read")
        if request.httprequest.method == "POST":
            self._set_deploy_state(task, parse_json_object(raw))
        return json_response(task_json(task))

    def _set_deploy_state(self, task, body):
        unknown = sorted(set(body) - set(TASK_FIELDS))
        if unknown:
            raise ApiError(422, VALIDATION_ERROR, f"Unknown field(s): {', '.join(unknown)}.")
        states = dict(task._fields["deploy_state"]._description_selection(request.env))
        state = body.get("state")
        if state not in states:
            raise ApiError(422, VALIDATION_ERROR,
                           f"'state' must be one of: {', '.join(states)}.")
        deployment, do_deployment_id = self._find_deployment(body.get("deployment_id"))
        if deployment.task_id and deployment.task_id != task:
            raise ApiError(409, CONFLICT,
                           f"Deployment {deployment.name} belongs to another task.")
        running = task.last_deployment_id
        if running.state in IN_PROGRESS and running != deployment:
            raise ApiError(409, CONFLICT,
                           f"Deployment {running.name} of this task is {running.state}; the "
                           "pipeline records its outcome when it ends.")
        deployed_at = _parse_datetime(task, body.get("deployed_at"))
        reporter = body.get("deployed_by")
        if reporter is not None and not isinstance(reporter, str):
            raise ApiError(422, VALIDATION_ERROR, "'deployed_by' must be a string.")
        version = body.get("version")
        if version is not None and not isinstance(version, str):
            raise ApiError(422, VALIDATION_ERROR, "'version' must be a string.")
        task.check_access("write")
        vals = {"deploy_state": state}
        if state == "deployed":
            vals.update({
                "deployed_at": deployed_at or fields.Datetime.now(),
                "deployed_by": request.env.uid,
                "deployed_version": version or deployment.image_tag or task.deployed_version,
            })
        task.write(vals)
        task.message_post(body=Markup(
            "<p>Deployment state set to <b>%s</b> through the API by %s.</p>"
            "<ul><li>Deployment: %s</li><li>Deployed by: %s</li><li>Deployed at: %s</li></ul>"
        ) % (states[state], request.env.user.name,
             deployment.name or do_deployment_id or "-", reporter or request.env.user.name,
             datetime_json(deployed_at or vals.get("deployed_at")) or "-"))

    def _find_deployment(self, reference):
        """(Odoo deployment, DigitalOcean deployment id) named by the body's deployment_id.

        An integer (or digits) is an Odoo deployment, which must exist; any other
        string is a DigitalOcean deployment id, linked to the Odoo deployment
        that created it when there is one.
        """
        Deployment = request.env["do.deployment"]
        if reference is None or reference == "":
            return Deployment, None
        if isinstance(reference, bool) or not isinstance(reference, (int, str)):
            raise ApiError(422, VALIDATION_ERROR,
                           "'deployment_id' must be an Odoo or a DigitalOcean deployment id.")
        if isinstance(reference, int) or reference.isdigit():
            number = int(reference)
            deployment = Deployment.browse(number if 0 < number < 2**31 else ())
            if not deployment.exists():
                raise ApiError(422, VALIDATION_ERROR, f"Deployment {reference} does not exist.")
            deployment.check_access("read")
            return deployment, deployment.do_deployment_id or None
        return Deployment.search([("do_deployment_id", "=", reference)], limit=1), reference


def _parse_datetime(task, value):
    """An RFC 3339 date-time as Odoo's naive UTC; None when absent; 422 when unreadable."""
    if value is None:
        return None
    parsed = task._parse_api_datetime(value)
    if parsed is None:
        raise ApiError(422, VALIDATION_ERROR,
                       "'deployed_at' must be an RFC 3339 date-time such as "
                       "2025-11-01T12:00:00Z.")
    return parsed
