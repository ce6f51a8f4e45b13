from odoo import api, fields, models
from odoo.exceptions import UserError

from ..engine import dry_run as engine_dry_run
from ..engine import pipeline_policy as policy
from ..engine.errors import DeployError

# Deployments a dry run still describes: nothing of theirs has reached DigitalOcean yet.
# (A state added later, such as waiting on gates, is open to a dry run as well.)
DRY_RUN_CLOSED_STATES = ("running", "rolling_back", "done", "failed", "rolled_back", "canceled")
# What of an engine error a dry run keeps: the rest (request URL, attempts) is for logs.
ERROR_KEYS = ("code", "message", "severity", "mitigation")


def _money(value, currency):
    return "?" if value is None else f"{'$' if currency == 'USD' else ''}{value:,.2f}" + (
        "" if currency == "USD" else f" {currency}")


def _text(value):
    """A spec value as one short line (lists and mappings as they are written)."""
    if value is None:
        return "-"
    return str(value)


class DoDeployment(models.Model):
    """The dry run of a deployment: the spec diff, DigitalOcean's verdict (propose)
    and the monthly cost before and after, without changing the app.

    The wizard runs one before Deploy and hands it to the deployment it creates;
    a deployment that has not started runs its own. It is kept on the deployment
    so that approvers see what was checked, by whom and when.
    """

    _inherit = "do.deployment"

    dry_run_data = fields.Json(
        string="Dry run", copy=False, readonly=True,
        help="What the last dry run found: the diff (secret values never), DigitalOcean's "
             "verdict and the monthly cost before and after.")
    dry_run_date = fields.Datetime(string="Dry run on", copy=False, readonly=True)
    dry_run_user_id = fields.Many2one("res.users", string="Dry run by", copy=False,
                                      readonly=True)
    dry_run_valid = fields.Boolean(
        copy=False, readonly=True, help="DigitalOcean accepted the change in the last dry run.")
    dry_run_error_code_id = fields.Many2one("do.error.code", string="Dry run error",
                                            copy=False, readonly=True)
    dry_run_report = fields.Html(compute="_compute_dry_run_report", sanitize=False)
    can_dry_run = fields.Boolean(compute="_compute_can_dry_run")

    @api.depends("kind", "state")
    def _compute_can_dry_run(self):
        for deployment in self:
            deployment.can_dry_run = not deployment._dry_run_too_late()

    @api.depends("dry_run_data")
    def _compute_dry_run_report(self):
        for deployment in self:
            deployment.dry_run_report = self._dry_run_html(deployment.dry_run_data)

    def _dry_run_too_late(self):
        self.ensure_one()
        return self.kind != "deploy" or self.state in DRY_RUN_CLOSED_STATES

    def write(self, vals):
        """A draft whose app, tag or components change loses its dry run: it was of
        another change."""
        if {"app_id", "image_tag", "components"} & set(vals):
            stale = self.filtered(lambda d: d.dry_run_data and any(
                (d[name].id if name == "app_id" else d[name] or False) != (vals[name] or False)
                for name in ("app_id", "image_tag", "components") if name in vals))
        else:
            stale = self.browse()
        result = super().write(vals)
        if stale:
            stale.sudo().write(self._dry_run_values(False))
        return result

    # ------------------------------------------------------------------
    # Running a dry run
    # ------------------------------------------------------------------

    @api.model
    def _dry_run_of(self, app, image_tag, components=False):
        """Dry-run a deployment of ``image_tag`` on ``components`` (comma-separated, empty:
        the app's own) of ``app``, as plain data for :meth:`_dry_run_html`.

        DigitalOcean is only read and asked to propose, so anybody who may read the app
        may run one. A spec DigitalOcean (or the tag check) refuses is reported with its
        code; DigitalOcean not answering raises a UserError with its code and mitigation.
        """
        app.check_access("read")
        tag = (image_tag or "").strip()
        components = components or app.component_names or False
        account = app.account_id
        try:
            client = account._get_backend()
            result = engine_dry_run.dry_run(
                client, app.do_app_id, tag=tag,
                components=policy.component_names(components) or None)
            if result["valid"] and app.registry_repository:
                try:
                    app._check_tag_in_registry(client, tag)
                except DeployError as error:
                    result.update(valid=False, error=error.to_dict())
        except DeployError as error:
            raise UserError(account._redact(
                f"{error.code}: {error.message} {error.entry.mitigation}")) from None
        errors = {key: {name: account._redact(value) if name == "message" else value
                        for name, value in result[key].items() if name in ERROR_KEYS}
                  for key in ("error", "live_error") if result.get(key)}
        return {
            "app_id": app.id,
            "app_name": app.name,
            "environment": app.environment,
            "image_tag": tag,
            "components": components,
            "do_app_id": result["app_id"],
            "live_deployment_id": result["live_deployment_id"],
            "valid": result["valid"],
            "error": errors.get("error"),
            "live_error": errors.get("live_error"),
            "warnings": [account._redact(warning) for warning in result["warnings"]],
            "diff": result["diff"],
            "cost": result["cost"],
            "spec_hash": result["spec_hash"],
        }

    def _dry_run_values(self, data):
        """The deployment's dry run fields for ``data`` (False: none)."""
        code = data and (data.get("error") or {}).get("code")
        return {
            "dry_run_data": data or False,
            "dry_run_date": data and fields.Datetime.now(),
            "dry_run_user_id": data and self.env.uid,
            "dry_run_valid": bool(data and data["valid"]),
            "dry_run_error_code_id": code and self.env["do.error.code"].sudo().search(
                [("code", "=", code)], limit=1).id,
        }

    def _matches_dry_run(self, data):
        """``data`` is a dry run of exactly this deployment's app, tag and components."""
        self.ensure_one()
        return bool(data) and (data.get("app_id"), data.get("image_tag"),
                               data.get("components") or False) == (
            self.app_id.id, self.image_tag, self.components or False)

    def _store_dry_run(self, data):
        """Keep ``data`` (a dry run of this deployment) on it, and say so in the chatter."""
        self.ensure_one()
        self.sudo().write(self._dry_run_values(data))
        cost = data["cost"]
        verdict = self.env._("DigitalOcean accepts it") if data["valid"] else self.env._(
            "it would fail: %(code)s", code=(data.get("error") or {}).get("code"))
        self._message_log(body=self.env._(
            "Dry run by %(user)s: %(verdict)s; monthly cost %(before)s → %(after)s.",
            user=self.env.user.name, verdict=verdict,
            before=_money(cost["before"], cost["currency"]),
            after=_money(cost["after"], cost["currency"])))

    def action_dry_run(self):
        """Dry-run this deployment (not started yet) and keep the result on it."""
        self.ensure_one()
        if self._dry_run_too_late():
            raise UserError(self.env._(
                "DRY_RUN_TOO_LATE: %(name)s is %(state)s, so it may have changed the app "
                "already and a dry run would show nothing. Read its steps for what it "
                "changed, or dry-run a new deployment from the Deploy wizard.",
                name=self.name, state=self.state))
        self._store_dry_run(self._dry_run_of(self.app_id, self.image_tag, self.components))
        return True

    # ------------------------------------------------------------------
    # Showing a dry run
    # ------------------------------------------------------------------

    @api.model
    def _dry_run_view(self, data):
        """``data`` as lines to show: verdict, cost, and the diff by part."""
        cost = data["cost"]
        currency = cost["currency"]
        delta = cost["delta"]
        diff = data.get("diff") or {}
        components = [{
            "title": f"{item['kind']} {item['name']}",
            "change": item["change"],
            "fields": [f"{field['field']}: {_text(field['before'])} → {_text(field['after'])}"
                       for field in item["fields"]],
        } for item in diff.get("components", [])]
        envs = []
        for item in diff.get("envs", []):
            where = item["component"] or self.env._("app-wide")
            if item["secret"]:
                detail = self.env._("secret: value not shown")
            elif item["change"] == "added":
                detail = _text(item["after"])
            elif item["change"] == "removed":
                detail = _text(item["before"])
            else:
                detail = f"{_text(item['before'])} → {_text(item['after'])}"
            envs.append({"key": item["key"], "where": where, "change": item["change"],
                         "detail": detail})
        return {
            "valid": data["valid"],
            "error": data.get("error"),
            "live_error": data.get("live_error"),
            "warnings": data.get("warnings") or [],
            "app_name": data.get("app_name"),
            "image_tag": data.get("image_tag"),
            "components": data.get("components"),
            "cost_before": _money(cost["before"], currency),
            "cost_after": _money(cost["after"], currency),
            "cost_delta": None if delta is None else (
                ("+" if delta > 0 else "-" if delta < 0 else "±") + _money(abs(delta), currency)),
            "cost_direction": None if delta is None else (
                "up" if delta > 0 else "down" if delta < 0 else "same"),
            "has_diff": bool(diff),
            "changed": bool(diff.get("changed")),
            "images": [{"component": item["component"], "before": item["before"] or "-",
                        "after": item["after"] or "-"} for item in diff.get("images", [])],
            "component_changes": components,
            "app_changes": [f"{item['field']}: {_text(item['before'])} → {_text(item['after'])}"
                            for item in diff.get("app", [])],
            "envs": envs,
            "live_deployment_id": data.get("live_deployment_id"),
            "spec_hash": (data.get("spec_hash") or "")[:12],
        }

    @api.model
    def _dry_run_html(self, data):
        """The dry run report (verdict, cost before → after, diff) as HTML; False if none.
        Who ran it and when are fields of the form, shown in the reader's time zone."""
        if not data:
            return False
        return self.env["ir.qweb"]._render("do_deploy.do_deployment_dry_run_report",
                                           {"view": self._dry_run_view(data)})
