"""KPI alerts: the SOP's alert thresholds evaluated over a rolling window, by a cron.

Every evaluation computes the KPIs (``engine/metrics.py``) of each app's window
and of all apps of a company together, and ``metrics.evaluate_alerts`` decides:
an alert record is raised and notified once when a metric crosses warning or
critical, notified once more when a warning turns critical, and cleared and
notified once when the metric is back to normal; nothing while it stays crossed
(the open alert's value is kept up to date silently).

The window is ``do_deploy.alert_window_days`` days (7 by default), or the last
``do_deploy.alert_window_deployments`` finished deployments of the scope when
that parameter is set.
"""

from datetime import timedelta

from odoo import api, fields, models

from ..engine import metrics
from ..engine.notify import routing, slack

WINDOW_DAYS_PARAM = "do_deploy.alert_window_days"
WINDOW_DEPLOYMENTS_PARAM = "do_deploy.alert_window_deployments"
DEFAULT_WINDOW_DAYS = 7
METRICS = [(metric, threshold.label) for metric, threshold in metrics.THRESHOLDS.items()]
LEVELS = [(metrics.WARNING, "Warning"), (metrics.CRITICAL, "Critical")]


class DoAlert(models.Model):
    """One crossing of an SOP alert threshold by one scope (an app, or all apps of a
    company), from the evaluation that raised it to the one that cleared it."""

    _name = "do.alert"
    _description = "KPI Alert"
    _order = "state, since desc, id desc"
    _check_company_auto = True

    metric = fields.Selection(METRICS, required=True, index=True)
    app_id = fields.Many2one("do.app", ondelete="cascade", index=True,
                             check_company=True, help="Empty: all apps of the company.")
    company_id = fields.Many2one("res.company", required=True, index=True)
    scope = fields.Char(compute="_compute_scope", help="The app, or all apps.")
    state = fields.Selection([("open", "Open"), ("cleared", "Cleared")], required=True,
                             default="open", index=True)
    level = fields.Selection(LEVELS, required=True,
                             help="The highest level reached since the metric crossed.")
    current_level = fields.Selection(
        [(metrics.OK, "OK"), *LEVELS], help="The level at the last evaluation.")
    value = fields.Float(
        "Raw value", digits=(16, 4),
        help="The value at the last evaluation, in the metric's unit (a ratio, seconds or a "
             "count).")
    value_display = fields.Char("Value")
    threshold_display = fields.Char("Threshold", help="The SOP's warning and critical limits.")
    sop_action = fields.Char("SOP action")
    window = fields.Char(help="The deployments the value was computed on.")
    deployment_count = fields.Integer("Deployments in window")
    since = fields.Datetime(required=True, help="When the metric crossed.")
    escalated_at = fields.Datetime()
    cleared_at = fields.Datetime()
    last_evaluated_at = fields.Datetime()
    notification_ids = fields.One2many("do.notification", "alert_id", string="Notifications")

    @api.depends("metric", "app_id", "level")
    def _compute_display_name(self):
        labels = dict(METRICS)
        for alert in self:
            alert.display_name = f"{labels.get(alert.metric, '')}: {alert._scope_label()}"

    @api.depends("app_id")
    def _compute_scope(self):
        for alert in self:
            alert.scope = alert.app_id.name or self.env._("All apps")

    def _scope_label(self):
        return (self.env._("app %(app)s", app=self.app_id.name) if self.app_id
                else self.env._("all apps of %(company)s", company=self.company_id.name))

    # ------------------------------------------------------------------
    # Evaluation (cron)
    # ------------------------------------------------------------------

    @api.model
    def _window(self):
        """({"days": n} or {"last": n}, a sentence for people)."""
        params = self.env["ir.config_parameter"].sudo()
        last = int(params.get_param(WINDOW_DEPLOYMENTS_PARAM) or 0)
        if last > 0:
            return {"last": last}, self.env._("last %(count)s deployments", count=last)
        days = int(params.get_param(WINDOW_DAYS_PARAM) or DEFAULT_WINDOW_DAYS)
        return {"days": max(days, 1)}, self.env._("last %(days)s days", days=max(days, 1))

    @api.model
    def _cron_evaluate(self):
        """Evaluate every scope of every company that has apps."""
        apps = self.env["do.app"].sudo().search([("active", "=", True)])
        for company in apps.company_id:
            self._evaluate_company(company, apps.filtered(lambda a, c=company: a.company_id == c))

    @api.model
    def _evaluate_company(self, company, apps, now=None):
        now = now or fields.Datetime.now()
        window, window_label = self._window()
        records = self._history(company, apps, window, now)
        by_app = metrics.group_by(records, "app")
        scopes = {("company", company.id): metrics.select_window(records, now=now, **window)}
        for app in apps:
            scopes[("app", app.id)] = metrics.select_window(by_app.get(app.id, []), now=now,
                                                            **window)
        open_alerts = {(alert.metric, alert._scope_key()): alert for alert in self.sudo().search(
            [("company_id", "=", company.id), ("state", "=", "open")])}
        previous = {key: alert.level for key, alert in open_alerts.items()}
        figures = {scope: metrics.kpis(selected) for scope, selected in scopes.items()}
        for decision in metrics.evaluate_alerts(previous, figures):
            alert = open_alerts.get((decision.metric, decision.scope))
            count = figures[decision.scope].deployments
            self._apply(decision, alert, company, now, window=window_label, count=count)

    def _scope_key(self):
        return ("app", self.app_id.id) if self.app_id else ("company", self.company_id.id)

    @api.model
    def _history(self, company, apps, window, now):
        """The finished deployments of ``company`` its windows may take, as metrics
        records: those of the last days, or the last N of the company and of each app."""
        domain = [("company_id", "=", company.id), ("kind", "=", "deploy"),
                  ("state", "in", metrics.FINISHED_STATES), ("end_date", "<=", now)]
        Deployment = self.env["do.deployment"].sudo()
        read = ["app_id", "environment", "state", "start_date", "end_date", "duration",
                "rollback_id"]
        order = "end_date desc, id desc"
        if "days" in window:
            deployments = Deployment.search_fetch(
                [*domain, ("end_date", ">", now - timedelta(days=window["days"]))], read,
                order=order)
        else:
            deployments = Deployment.search_fetch(domain, read, order=order,
                                                  limit=window["last"])
            for app in apps:
                deployments |= Deployment.search_fetch(
                    [*domain, ("app_id", "=", app.id)], read, order=order, limit=window["last"])
        checks = {step.deployment_id.id: step.data.get("checks") or []
                  for step in self.env["do.deployment.step"].sudo().search_fetch(
                      [("deployment_id", "in", deployments.ids), ("code", "=", "health_check"),
                       ("data", "!=", False)], ["deployment_id", "data"])}
        records = []
        for deployment in deployments:
            failures, consecutive = metrics.health_check_counts(
                check.get("ok") for check in checks.get(deployment.id, []))
            records.append(metrics.Deployment(
                id=deployment.id, app=deployment.app_id.id, environment=deployment.environment,
                state=deployment.state, started=deployment.start_date,
                ended=deployment.end_date, duration=deployment.duration or None,
                rolled_back=bool(deployment.rollback_id), health_check_failures=failures,
                health_check_consecutive=consecutive))
        return records

    @api.model
    def _apply(self, decision, alert, company, now, *, window, count):
        """Store one decision; notify when it has an action."""
        threshold = metrics.THRESHOLDS[decision.metric]
        comparison = "≥" if threshold.inclusive else ">"
        warning, critical = (metrics.format_value(threshold.unit, limit)
                             for limit in (threshold.warning, threshold.critical))
        values = {
            "value": decision.value or 0.0,
            "value_display": metrics.format_value(threshold.unit, decision.value),
            "current_level": decision.level,
            "window": window,
            "deployment_count": count,
            "last_evaluated_at": now,
        }
        if decision.action in (metrics.RAISE_WARNING, metrics.RAISE_CRITICAL):
            kind, scope_id = decision.scope
            alert = self.sudo().create({
                **values, "metric": decision.metric, "company_id": company.id,
                "app_id": scope_id if kind == "app" else False, "level": decision.state,
                "since": now, "sop_action": threshold.action,
                "threshold_display": (
                    f"warning {comparison} {warning}, critical {comparison} {critical}"),
            })
        elif decision.action == metrics.ESCALATE:
            alert.write({**values, "level": metrics.CRITICAL, "escalated_at": now})
        elif decision.action == metrics.CLEAR:
            alert.write({**values, "state": "cleared", "cleared_at": now})
        elif alert and decision.level is not None:
            alert.write(values)
        if decision.action:
            alert._notify(decision)

    def _notify(self, decision):
        """Queue the alert's notifications: #incidents, and e-mail when it is critical."""
        self.ensure_one()
        link = f"{self.get_base_url()}/odoo/do.alert/{self.id}"
        message = slack.alert_message(decision, scope_label=self._scope_label(), link=link)
        channels = self.env["do.notification.route"]._route(
            company=self.company_id, app=self.app_id, environment=self.app_id.environment,
            event=routing.ALERT,
            default_roles=routing.alert_roles(decision.action, decision.previous))
        self.env["do.notification"]._queue([{
            "company_id": self.company_id.id, "event": routing.ALERT, "alert_id": self.id,
            "channel_id": channel.id, "summary": message["text"], "link": link,
            "payload": message if channel.channel_type == "slack" else False,
        } for channel in channels if channel.channel_type in ("slack", "email")])
