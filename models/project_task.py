import math
from datetime import datetime, timedelta

from odoo import SUPERUSER_ID, Command, api, fields, models

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
            ("waiting", "Waiting on gates"),
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
    can_roll_back = fields.Boolean(
        compute="_compute_can_roll_back", groups="do_deploy.group_do_deploy_user",
        help="The task's last deployment is live and can be rolled back.")

    @api.model
    def default_get(self, fields_list):
        """Tasks the pipeline files (incidents, from the cron as OdooBot) are nobody's yet.

        Odoo assigns a task to its creator when the defaults hold no project (the
        project comes with the values), which made OdooBot the assignee of every
        incident; people are notified as followers instead.
        """
        defaults = super().default_get(fields_list)
        if self.env.uid == SUPERUSER_ID and defaults.get("user_ids"):
            defaults["user_ids"] = [
                command for command in defaults["user_ids"]
                if not (isinstance(command, (list, tuple)) and command[0] == Command.LINK
                        and command[1] == SUPERUSER_ID)]
        return defaults

    @api.depends("deployment_ids.state", "deployment_ids.kind")
    def _compute_deploy_state(self):
        states = {
            "draft": "none", "canceled": "none", "waiting": "waiting",
            "queued": "deploying", "running": "deploying",
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

    @api.depends_context("uid")
    @api.depends("last_deployment_id.is_live", "last_deployment_id.previous_do_deployment_id")
    def _compute_can_roll_back(self):
        for task in self:
            last = task.sudo().last_deployment_id
            # The rule of a manual rollback: only the app's live deployment, back to the
            # deployment before it.
            task.can_roll_back = bool(last.is_live and last.previous_do_deployment_id)

    def action_open_rollback_wizard(self):
        """Roll back the task's live deployment (the rollback wizard asks why)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "do_deploy.do_rollback_wizard_action")
        action["context"] = {"default_deployment_id": self.last_deployment_id.id}
        return action

    def _restore_after_rollback(self, deployment):
        """``deployment`` of this task was rolled back: its version no longer serves traffic.

        When the task's deployment facts are that deployment's (it reached step 8), they
        go back to those of the task's deployment that is live again (or are cleared),
        and a task the deployment moved to the app's deployed stage goes back to the
        stage it had before.
        """
        self.ensure_one()
        if self.deployed_version != deployment.image_tag or not self.deployed_at or (
                deployment.start_date and self.deployed_at < deployment.start_date):
            return
        live_again = self.env["do.deployment"]
        if deployment.previous_do_deployment_id:
            live_again = live_again.search([
                ("task_id", "=", self.id), ("kind", "=", "deploy"), ("state", "=", "done"),
                ("do_deployment_id", "=", deployment.previous_do_deployment_id),
            ], limit=1)
        vals = {
            "deployed_version": live_again.image_tag or False,
            "deployed_at": live_again.end_date or False,
            "deployed_by": live_again.requested_by_id.id or False,
        }
        stage = deployment.app_id.deployed_stage_id
        previous_stage = self._stage_before(stage) if stage and self.stage_id == stage else None
        if previous_stage:
            vals["stage_id"] = previous_stage.id
        self.write(vals)
        self._message_log(body=self.env._(
            "%(deployment)s (%(tag)s) was rolled back: %(version)s serves traffic again.%(stage)s",
            deployment=deployment.name, tag=deployment.image_tag,
            version=deployment.previous_version or self.env._("the previous version"),
            stage=self.env._(" Back to %(stage)s.", stage=previous_stage.name)
            if previous_stage else ""))

    def _stage_before(self, stage):
        """The stage this task was in before it last moved to ``stage`` (from its tracking)."""
        self.ensure_one()
        tracking = self.env["mail.tracking.value"].sudo().search([
            ("mail_message_id.model", "=", "project.task"),
            ("mail_message_id.res_id", "=", self.id),
            ("field_id.model", "=", "project.task"), ("field_id.name", "=", "stage_id"),
            ("new_value_integer", "=", stage.id),
        ], order="id desc", limit=1)
        previous = self.env["project.task.type"].browse(tracking.old_value_integer).exists()
        return previous if previous and previous != stage else None
