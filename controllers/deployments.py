"""``/api/v1/deployments``: start a deployment from CI or an editor, then poll it.

Two ways to authenticate, both GitHub-Actions friendly:

* ``Authorization: Bearer <Odoo API key>``: the request runs as the key's
  user, with that user's groups and record rules, as if they had clicked
  Deploy in the web client (staging needs Deployment User, production
  Deployment Manager unless it waits for approval: then a Deployment User's
  request waits for the approvers, as every gate of the app is obeyed).
* ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256>`` under the app's webhook
  secret, as GitHub signs webhooks. A POST signs its raw body (which names
  the app); a GET, which has no body, signs the request path. The secret only
  authorizes deployments of that one app, so a signed request runs as the
  app's trigger user (``do.app.trigger_user_id``: a Deployment User of the
  app's company, a Deployment Manager for production, no administrator), in
  that company only, and the deployment records it as the requester. An app
  without a valid trigger user refuses signed requests (403).

The idempotency key (body ``idempotency_key`` or header ``Idempotency-Key``)
is unique per company: the same key again returns the deployment it created
(200) if the request is the same, and 409 if it asks for something else.
"""

from psycopg2 import errors as pg_errors

from odoo import http
from odoo.exceptions import ConcurrencyError
from odoo.http import request

from ..models.do_deployment import FINAL_STATES
from .common import (
    CONFLICT,
    FORBIDDEN,
    MANAGER_GROUP,
    NOT_FOUND,
    SIGNATURE_HEADER,
    USER_GROUP,
    VALIDATION_ERROR,
    ApiError,
    act_as,
    api_route,
    authenticate_bearer,
    base_url,
    datetime_json,
    json_api,
    json_response,
    parse_json_object,
    read_body,
    record_id,
    require_group,
    signature_matches,
    unauthorized,
)
from .gates import gates_json

TRIGGER_FIELDS = ("app", "image_tag", "task_id", "force_rebuild", "idempotency_key",
                  "components", "note", "commit_sha")
MAX_KEY_LENGTH = 255
# Fields that must match when an idempotency key is replayed.
REPLAY_FIELDS = ("app_id", "image_tag", "task_id", "force_rebuild")
IDEMPOTENCY_INDEX = "do_deployment_idempotency_key_uniq"


def status_url(deployment):
    return f"{base_url()}/api/v1/deployments/{deployment.id}"


def deployment_json(deployment):
    """Everything a caller polls for: state, progress, steps and the rollback picture."""
    error = deployment.error_code_id
    return {
        "id": deployment.id,
        "name": deployment.name,
        "kind": deployment.kind,
        "state": deployment.state,
        "finished": deployment.state in FINAL_STATES,
        "progress": round(deployment.progress, 1),
        "app": {"id": deployment.app_id.id, "name": deployment.app_id.name,
                "do_app_id": deployment.app_id.do_app_id},
        "environment": deployment.environment,
        "image_tag": deployment.image_tag or None,
        "components": deployment.components or None,
        "force_rebuild": deployment.force_rebuild,
        "task_id": deployment.task_id.id or None,
        "idempotency_key": deployment.idempotency_key or None,
        "requested_by": deployment.requested_by_id.name or None,
        "queued_at": datetime_json(deployment.queued_at),
        "start_date": datetime_json(deployment.start_date),
        "end_date": datetime_json(deployment.end_date),
        "duration": deployment.duration or None,
        "do_deployment_id": deployment.do_deployment_id or None,
        "error": {"code": error.code, "message": deployment.error_message,
                  "mitigation": error.mitigation} if error else None,
        "steps": [{
            "sequence": step.sequence,
            "code": step.code,
            "name": step.name,
            "state": step.state,
            "start_date": datetime_json(step.start_date),
            "end_date": datetime_json(step.end_date),
            "duration": step.duration if step.end_date and step.state != "skipped" else None,
            "budget": step.budget,
            "over_budget": step.over_budget,
            "error_code": step.error_code_id.code or None,
            "error_message": step.error_message or None,
        } for step in deployment.step_ids.sorted("sequence")],
        "rollback": {
            "previous_do_deployment_id": deployment.previous_do_deployment_id or None,
            "previous_version": deployment.previous_version or None,
            "rollback_of": _link(deployment.rollback_of_id),
            "rolled_back_by": _link(deployment.rollback_id),
            "reason": deployment.rollback_reason or None,
            "incident_task_id": deployment.incident_task_id.id or None,
        },
        "gates": gates_json(deployment),
        "status_url": status_url(deployment),
    }


def _link(deployment):
    if not deployment:
        return None
    return {"id": deployment.id, "name": deployment.name, "state": deployment.state,
            "status_url": status_url(deployment)}


class DoDeployDeployments(http.Controller):
    @api_route("/api/v1/deployments", readonly=False)
    @json_api("POST")
    def create_deployment(self):
        raw = read_body()
        if SIGNATURE_HEADER in request.httprequest.headers and not _has_bearer():
            body = parse_json_object(raw)
            app = self._find_app(_app_reference(body.get("app")), sudo=True)
            if not (app and signature_matches(app.webhook_secret, raw)):
                raise unauthorized("The signature does not match the body under the webhook "
                                   "secret of the app it names.")
            app = _act_as_trigger_user(app)
            values = _check_trigger_fields(body)
        else:
            authenticate_bearer()
            require_group(USER_GROUP, "The API key's user is not a Deployment User.")
            values = _check_trigger_fields(parse_json_object(raw))
            app = self._find_app(values["app"])
            if not app:
                raise ApiError(422, "APP_NOT_FOUND",
                               f"No app named or numbered {values['app']!r} is visible to you.")
        vals = self._deployment_values(app, values)
        existing = self._find_replay(app, values["idempotency_key"])
        if existing:
            return self._replay(existing, vals)
        # Created and queued in one request: the state tracking message (Draft -> Queued,
        # by the caller) already records who created it, so skip the separate creation note.
        Deployment = request.env["do.deployment"].with_context(mail_create_nolog=True)
        try:
            with request.env.cr.savepoint():
                deployment = Deployment.create(vals)
        except pg_errors.UniqueViolation as error:
            if error.diag.constraint_name != IDEMPOTENCY_INDEX:
                raise
            # A concurrent request with the same key committed first: Odoo
            # retries this request, which then finds and replays that deployment.
            raise ConcurrencyError("idempotency key taken concurrently") from error
        deployment.action_start()
        return json_response(self._summary(deployment), 201,
                             {"Location": status_url(deployment)})

    @api_route("/api/v1/deployments/<int:deployment_id>", readonly=True)
    @json_api("GET")
    def get_deployment(self, deployment_id):
        if SIGNATURE_HEADER in request.httprequest.headers and not _has_bearer():
            deployment = request.env["do.deployment"].sudo().browse(deployment_id).exists()
            secret = deployment.app_id.webhook_secret
            if not (deployment and signature_matches(secret, request.httprequest.path.encode())):
                raise unauthorized("The signature does not match the request path under the "
                                   "app's webhook secret.")
            _act_as_trigger_user(deployment.app_id)
            deployment = deployment.with_env(request.env)
            deployment.check_access("read")
            return json_response(deployment_json(deployment))
        authenticate_bearer()
        require_group(USER_GROUP, "The API key's user is not a Deployment User.")
        deployment = request.env["do.deployment"].browse(deployment_id)
        if not deployment.exists():
            raise ApiError(404, NOT_FOUND, f"Deployment {deployment_id} does not exist.")
        deployment.check_access("read")
        return json_response(deployment_json(deployment))

    def _find_app(self, reference, sudo=False):
        """The app by id, name or DigitalOcean app id; empty when none or several match."""
        Apps = request.env["do.app"].sudo() if sudo else request.env["do.app"]
        if not reference:
            return Apps
        if isinstance(reference, int):
            return Apps.search([("id", "=", reference)])
        apps = Apps.search(["|", ("name", "=", reference), ("do_app_id", "=", reference)],
                           limit=2)
        return apps if len(apps) == 1 else Apps

    def _deployment_values(self, app, values):
        vals = {
            "app_id": app.id,
            "image_tag": values["image_tag"],
            "force_rebuild": values["force_rebuild"],
            "idempotency_key": values["idempotency_key"],
            "note": values["note"],
        }
        if values["components"]:
            vals["components"] = values["components"]
        if values["commit_sha"]:
            vals["commit_sha"] = values["commit_sha"]
        if values["task_id"]:
            task = request.env["project.task"].browse(values["task_id"])
            if not task.exists():
                raise ApiError(422, "TASK_NOT_FOUND", f"Task {values['task_id']} does not exist.")
            if problem := app._task_problem(task):
                raise ApiError(422, "TASK_NOT_FOUND", problem)
            task.check_access("read")
            vals["task_id"] = task.id
        else:
            vals["task_id"] = False
        if app._requires_manager_to_deploy() and not request.env.user.has_group(MANAGER_GROUP):
            raise ApiError(403, FORBIDDEN, "Only a Deployment Manager can deploy to production.")
        return vals

    def _find_replay(self, app, key):
        """The deployment an earlier request made with this key, in the app's company."""
        return request.env["do.deployment"].sudo().search(
            [("idempotency_key", "=", key), ("company_id", "=", app.company_id.id)], limit=1)

    def _replay(self, deployment, vals):
        mismatched = [field for field in REPLAY_FIELDS
                      if _plain(deployment[field]) != (vals.get(field) or False)]
        if mismatched:
            raise ApiError(409, CONFLICT,
                           "This idempotency key was used for a different deployment request "
                           f"({', '.join(mismatched)} differ); use a new key.")
        deployment = deployment.with_env(request.env)
        deployment.check_access("read")
        return json_response(self._summary(deployment), 200,
                             {"Location": status_url(deployment), "Idempotent-Replayed": "true"})

    def _summary(self, deployment):
        return {"id": deployment.id, "name": deployment.name, "state": deployment.state,
                "app_id": deployment.app_id.id, "image_tag": deployment.image_tag,
                "task_id": deployment.task_id.id or None,
                "idempotency_key": deployment.idempotency_key,
                "status_url": status_url(deployment)}


def _plain(value):
    """A field value as the create() value it came from (records become ids)."""
    return value.id if hasattr(value, "_name") else value


def _app_reference(value):
    """The body's ``app`` as an id (int) or a name / DigitalOcean id (str); None if neither."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**31 else None
    return value.strip() or None


def _act_as_trigger_user(app):
    """Run the rest of a signed request as ``app``'s trigger user, in the app's company
    only; 403 with what to do when the app has no usable trigger user. Return the app
    in the new environment."""
    if problem := app._trigger_user_problem():
        raise ApiError(403, FORBIDDEN, problem)
    act_as(app.sudo().trigger_user_id.id, company_ids=app.company_id.ids)
    return app.with_env(request.env)


def _has_bearer():
    return request.httprequest.headers.get("Authorization", "").lower().startswith("bearer ")


def _check_trigger_fields(body):
    """Validate the trigger body's types and values; 422 with one sentence otherwise."""
    unknown = sorted(set(body) - set(TRIGGER_FIELDS))
    if unknown:
        raise ApiError(422, VALIDATION_ERROR, f"Unknown field(s): {', '.join(unknown)}.")
    app = _app_reference(body.get("app"))
    if not app:
        raise ApiError(422, "APP_NOT_FOUND", "Give 'app': the app's id, name or DigitalOcean id.")
    image_tag = body.get("image_tag")
    if problem := request.env["do.deployment"]._image_tag_problem(image_tag):
        raise ApiError(422, problem["code"], problem["message"])
    force_rebuild = body.get("force_rebuild", False)
    if not isinstance(force_rebuild, bool):
        raise ApiError(422, VALIDATION_ERROR, "'force_rebuild' must be true or false.")
    header_key = request.httprequest.headers.get("Idempotency-Key")
    key = body.get("idempotency_key", header_key)
    if header_key is not None and key != header_key:
        raise ApiError(422, VALIDATION_ERROR,
                       "The Idempotency-Key header and the body's idempotency_key differ.")
    if not isinstance(key, str) or not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ApiError(422, VALIDATION_ERROR,
                       f"Give an 'idempotency_key' of 1 to {MAX_KEY_LENGTH} characters.")
    for field in ("components", "note", "commit_sha"):
        if body.get(field) is not None and not isinstance(body[field], str):
            raise ApiError(422, VALIDATION_ERROR, f"'{field}' must be a string.")
    task_id = body.get("task_id")
    return {
        "app": app,
        "image_tag": image_tag,
        "task_id": record_id(task_id, "task_id") if task_id is not None else None,
        "force_rebuild": force_rebuild,
        "idempotency_key": key.strip(),
        "components": body.get("components") or None,
        "note": body.get("note") or None,
        "commit_sha": body.get("commit_sha") or None,
    }
