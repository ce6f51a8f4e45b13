"""Notifications of ``do.deployment``: its state transitions become queued notifications.

Each transition that matters (see :data:`TRANSITION_EVENTS`) is turned into an
:class:`~..engine.notify.events.DeploymentEvent`, routed to channels (the SOP's
routing, then the rules) and queued, one ``do.notification`` per channel, in the
deployment's own transaction: if the runner's step rolls back, nothing is
announced. Nothing is sent here (the delivery cron sends), and a fault in
building a notification is logged and swallowed: it must never fail a
deployment.
"""

import logging

from odoo import api, fields, models

from ..engine.notify import events, pagerduty, slack

_logger = logging.getLogger(__name__)

# (kind, state entered) -> the event it announces. A deploy that enters rolling_back has
# failed (its rollback is then announced by the rollback run); one that then fails with
# its rollback says nothing more (the run's rollback_failed says it). ``waiting`` is the
# quality gates' state before a deployment runs, when that state exists.
TRANSITION_EVENTS = {
    ("deploy", "running"): events.STARTED,
    ("deploy", "waiting"): events.WAITING_APPROVAL,
    ("deploy", "done"): events.DONE,
    ("deploy", "failed"): events.FAILED,
    ("deploy", "rolling_back"): events.FAILED,
    ("rollback", "running"): events.ROLLBACK_STARTED,
    ("rollback", "done"): events.ROLLED_BACK,
    ("rollback", "failed"): events.ROLLBACK_FAILED,
}
# Transitions that announce nothing although their target state is in the table.
SILENT_TRANSITIONS = {("deploy", "rolling_back", "failed")}


class DoDeployment(models.Model):
    # One model over several files, one per concern (DESIGN.md), as Odoo splits account.move.
    _inherit = "do.deployment"  # pylint: disable=consider-merging-classes-inherited

    notification_ids = fields.One2many("do.notification", "deployment_id",
                                       string="Notifications")
    rollback_notification_ids = fields.One2many("do.notification", "rollback_id",
                                                string="Notifications of this rollback")
    notification_count = fields.Integer(compute="_compute_notification_count")

    @api.depends("notification_ids", "rollback_notification_ids")
    def _compute_notification_count(self):
        for deployment in self:
            deployment.notification_count = len(
                deployment.notification_ids | deployment.rollback_notification_ids)

    @api.model_create_multi
    def create(self, vals_list):
        deployments = super().create(vals_list)
        # An automatic rollback is created running.
        deployments._queue_notifications({deployment.id: None for deployment in deployments})
        return deployments

    def write(self, vals):
        if "state" not in vals:
            return super().write(vals)
        before = {deployment.id: deployment.state for deployment in self}
        result = super().write(vals)
        self._queue_notifications(before)
        return result

    def action_view_notifications(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "do_deploy.do_notification_action")
        action["domain"] = ["|", ("deployment_id", "=", self.id), ("rollback_id", "=", self.id)]
        action["context"] = {}
        return action

    def _queue_notifications(self, previous_states):
        """Queue the notifications of the transitions from ``previous_states`` ({id: state}).

        The guard's savepoint flushes nothing: a pending write the database refuses (the
        unique index on running deployments the runner relies on) must raise to the caller
        when it flushes, as it did before, not be swallowed here as a notification fault.
        Nor is the state flushed here: the runner decides when its writes reach the
        database (some inside savepoints it rolls back).
        """
        for deployment in self:
            before = previous_states.get(deployment.id)
            key = (deployment.kind, deployment.state)
            if before == deployment.state or key not in TRANSITION_EVENTS or (
                    (*key[:1], before, deployment.state) in SILENT_TRANSITIONS):
                continue
            try:
                with self.env.cr.savepoint(flush=False):
                    deployment._queue_event(TRANSITION_EVENTS[key])
            except Exception:  # a notification must never fail a deployment
                self.env["do.notification"].invalidate_model(flush=False)
                _logger.exception("Notifications of %s (%s) could not be queued.",
                                  deployment.name, TRANSITION_EVENTS[key])

    def _deployment_link(self):
        return f"{self.get_base_url()}/odoo/do.deployment/{self.id}"

    def _notification_event(self, event_name):
        """The DeploymentEvent of this deployment (for a rollback event: of this rollback
        run, about the deployment it rolls back)."""
        run = self.sudo()
        subject = run.rollback_of_id if event_name in events.ROLLBACK_EVENTS and (
            run.rollback_of_id) else run
        # The failure, or the failure that caused the rollback.
        failed = event_name in (events.FAILED, *events.ROLLBACK_EVENTS)
        code = run.error_code_id or subject.error_code_id
        now = fields.Datetime.now()
        duration = None
        if run.state in ("done", "failed", "rolled_back", "rolling_back"):
            # A deployment handing over to its rollback has no duration of its own yet.
            duration = run.duration or (
                (now - run.start_date).total_seconds() if run.start_date else 0.0)
        return events.DeploymentEvent(
            event=event_name,
            deployment=subject.name,
            app=run.app_id.name,
            environment=run.environment or "",
            tag=subject.image_tag or None,
            previous_version=subject.previous_version or None,
            task=subject.task_id.display_name or None,
            requested_by=run.requested_by_id.name or None,
            duration=duration,
            code=code.code if failed and code else None,
            message=(run.error_message or subject.error_message or None) if failed else None,
            link=subject._deployment_link(),
            app_url=run.app_id.ingress_url or None,
            rollback=run.name if run != subject else None,
            occurred_at=now,
        )

    def _queue_event(self, event_name):
        event = self._notification_event(event_name)
        run = self.sudo()
        subject = run.rollback_of_id if run.kind == "rollback" and run.rollback_of_id else run
        channels = self.env["do.notification.route"]._route(
            company=run.company_id, app=run.app_id, environment=run.environment,
            event=event_name, default_roles=events.sop_channels(event))
        common = {"company_id": run.company_id.id, "event": event_name,
                  "deployment_id": subject.id, "rollback_id": run.id if run != subject else False,
                  "link": event.link}
        message = slack.deployment_message(event)
        instance = self.env["ir.config_parameter"].sudo().get_param("database.uuid")
        vals_list = []
        for channel in channels:
            vals = {**common, "channel_id": channel.id, "summary": message["text"]}
            if channel.channel_type == "slack":
                vals["payload"] = message
            elif channel.channel_type == "pagerduty":
                page = pagerduty.event_for("", event, instance=instance)
                if page is None:  # PagerDuty only pages production rollbacks
                    continue
                page.pop("routing_key")
                vals["payload"] = page
            vals_list.append(vals)
        self.env["do.notification"]._queue(vals_list)
