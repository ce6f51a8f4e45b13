import math
from datetime import datetime, timedelta

from odoo import api, fields, models

from ..engine.deployment import parse_time

_EPOCH = datetime(1970, 1, 1)


class ProjectTask(models.Model):
    """Deployments of a task and the facts of its last successful one."""

    _inherit = "project.task"

    deployment_ids = fields.One2many(
        "do.deployment", "task_id", string="Deployments",
        groups="do_deploy.group_do_deploy_user",
    )
    deployment_count = fields.Integer(
        compute="_compute_deployment_count", groups="do_deploy.group_do_deploy_user"
    )
    last_deployment_id = fields.Many2one(
        "do.deployment", compute="_compute_deploy_state", store=True,
        groups="do_deploy.group_do_deploy_user",
    )
    last_deployment_state = fields.Selection(
        related="last_deployment_id.state", string="Last Deployment State",
        groups="do_deploy.group_do_deploy_user",
    )
    deploy_state = fields.Selection(
        [
            ("none", "Not deployed"),
            ("deploying", "Deploying"),
            ("deployed", "Deployed"),
            ("failed", "Failed"),
            ("rolled_back", "Rolled back"),
        ],
        compute="_compute_deploy_state",
        store=True,
        default="none",
    )
    deployed_at = fields.Datetime(readonly=True, copy=False)
    deployed_by = fields.Many2one("res.users", readonly=True, copy=False)
    deployed_version = fields.Char(readonly=True, copy=False)

    @api.depends("deployment_ids.state", "deployment_ids.kind")
    def _compute_deploy_state(self):
        states = {
            "draft": "none", "canceled": "none", "queued": "deploying", "running": "deploying",
            "rolling_back": "deploying", "done": "deployed", "failed": "failed",
            "rolled_back": "rolled_back",
        }
        for task in self:
            deploys = task.sudo().deployment_ids.filtered(
                lambda d: d.kind == "deploy" and d.state not in ("draft", "canceled"))
            last = deploys.sorted("id")[-1:]
            task.last_deployment_id = last.id
            task.deploy_state = states[last.state] if last else "none"

    def _compute_deployment_count(self):
        counts = dict(self.env["do.deployment"]._read_group(
            [("task_id", "in", self.ids)], ["task_id"], ["__count"]))
        for task in self:
            task.deployment_count = counts.get(task, 0)

    @api.model
    def _parse_api_datetime(self, value):
        """An RFC 3339 date-time from the API as Odoo's naive UTC, to the second; None
        when ``value`` is not one.

        Read by the engine's own parser, so every Python Odoo 19 runs on reads the
        same forms (3.10's ``fromisoformat`` takes neither ``Z`` nor nine fraction
        digits). A date-time without an offset is UTC, as Odoo stores them; a date
        alone is its midnight UTC.
        """
        if not isinstance(value, str):
            return None
        for text in (value, f"{value}Z", f"{value}T00:00:00Z"):
            seconds = parse_time(text)
            if seconds is not None:
                try:
                    return _EPOCH + timedelta(seconds=math.floor(seconds))
                except OverflowError:  # after 9999-12-31 in UTC
                    return None
        return None

    def action_open_deploy_wizard(self):
        """The deploy wizard (views helper) with this task preselected."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Deploy"),
            "res_model": "do.deploy.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_task_id": self.id},
        }

    def action_view_deployments(self):
        self.ensure_one()
        return self.env["do.deployment"]._get_history_action("task_id", self)
