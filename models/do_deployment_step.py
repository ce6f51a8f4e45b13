import re

from odoo import api, fields, models

LOG_LIMIT = 64 * 1024

DEPLOY_STEPS = [
    # (code, name, SOP step number whose budget applies)
    ("update_spec", "Update app spec", 1),
    ("apply_spec", "Apply app spec", 2),
    ("create_deployment", "Create deployment", 3),
    ("monitor", "Monitor deployment", 4),
    ("health_check", "Health check", 5),
    ("traffic_switch", "Traffic switch", 6),
    ("validate", "Post-deployment validation", 7),
    ("update_task", "Update task", 8),
]
ROLLBACK_STEPS = [
    ("rb_validate", "Validate rollback", 3),
    ("rb_create", "Roll back", 3),
    ("rb_monitor", "Wait for rollback", 4),
    ("rb_health_check", "Rollback health check", 5),
    ("rb_commit", "Commit rollback", 6),
    # Only after a failed rollback step (skipped otherwise): undo the rollback so the app
    # is not left pinned, and follow the deployment the revert makes.
    ("rb_revert", "Revert rollback", 4),
]
FINISHED_STEP_STATES = ("done", "warning", "skipped")
# A log entry starts with the time _append_log stamps it with; a component's build or
# deploy log fetched on a failure is one entry of many lines.
_LOG_ENTRY_RE = re.compile(r"^\d\d:\d\d:\d\d ", re.MULTILINE)
_FAILURE_ENTRY_RE = re.compile(r"^\d\d:\d\d:\d\d (FAILED |Mitigation: |[A-Z]+ log of |Warning|"
                               r"Could not cancel|Canceled the deployment)")


class DoDeploymentStep(models.Model):
    """One step of one deployment, created up front so the whole plan is visible.

    Besides timing and outcome, a step keeps the structured facts the pipeline
    needs to resume after a crash (``data``: intents, DigitalOcean ids, check
    results) and a capped, redacted log.
    """

    _name = "do.deployment.step"
    _description = "Deployment Step"
    _order = "deployment_id, sequence, id"

    deployment_id = fields.Many2one("do.deployment", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="deployment_id.company_id", store=True)
    # Stored so the step pivot and graph can group by them: the web client cannot group
    # by a path such as deployment_id.app_id (issue 11: History > Step Durations crashed).
    app_id = fields.Many2one(related="deployment_id.app_id", store=True, string="App")
    environment = fields.Selection(related="deployment_id.environment", store=True)
    sequence = fields.Integer(default=10)
    code = fields.Selection(
        [(code, name) for code, name, _number in DEPLOY_STEPS + ROLLBACK_STEPS], required=True
    )
    name = fields.Char(required=True)
    state = fields.Selection(
        [
            ("pending", "Pending"),
            ("running", "Running"),
            ("done", "Done"),
            ("warning", "Done with warning"),
            ("failed", "Failed"),
            ("skipped", "Skipped"),
        ],
        required=True,
        default="pending",
    )
    start_date = fields.Datetime()
    end_date = fields.Datetime()
    duration = fields.Float(help="Seconds from start to end.", aggregator="avg")
    budget = fields.Integer(help="Expected seconds (SOP table or the app's override).")
    over_budget = fields.Boolean()
    error_code_id = fields.Many2one("do.error.code", ondelete="restrict", index=True)
    error_message = fields.Text()
    mitigation = fields.Text(related="error_code_id.mitigation")
    log = fields.Text(help="Redacted, capped to the last 64 KB.")
    data = fields.Json(help="Structured facts of the step (ids, check results, intents).")
    attempt = fields.Integer(default=0, help="Actions run for this step (polls included).")
    do_phase = fields.Char(
        string="DigitalOcean phase", compute="_compute_do_progress",
        help="The phase of DigitalOcean's deployment at the last poll (BUILDING, DEPLOYING...).")
    do_progress = fields.Char(
        string="DigitalOcean progress", compute="_compute_do_progress",
        help="DigitalOcean's progress steps done out of all, at the last poll.")
    log_excerpt = fields.Text(
        string="What went wrong", compute="_compute_log_excerpt",
        help="The failure, its mitigation and the failing component's log, from the step log.")
    log_truncated = fields.Boolean(compute="_compute_log_excerpt")

    @api.depends("sequence", "name")
    def _compute_display_name(self):
        for step in self:
            step.display_name = f"{step.sequence}. {step.name}"

    @api.depends("data")
    def _compute_do_progress(self):
        for step in self:
            data = step.data or {}
            step.do_phase = data.get("phase") or False
            step.do_progress = data.get("progress") or False

    @api.depends("log", "state")
    def _compute_log_excerpt(self):
        """The failing part of the log first: the failure line, its mitigation and the
        failing component's build or deploy log, in that order (warnings when a step
        only warned)."""
        for step in self:
            log = step.log or ""
            step.log_truncated = log.startswith("[...]")
            if step.state not in ("failed", "warning") or not log:
                step.log_excerpt = False
                continue
            starts = [match.start() for match in _LOG_ENTRY_RE.finditer(log)]
            entries = [log[start:end].rstrip("\n")
                       for start, end in zip(starts, [*starts[1:], len(log)], strict=True)]
            wanted = [entry for entry in entries if _FAILURE_ENTRY_RE.match(entry)]
            order = ("FAILED ", "Mitigation: ")
            wanted.sort(key=lambda entry: next(
                (index for index, prefix in enumerate(order) if entry[9:].startswith(prefix)),
                len(order)))
            step.log_excerpt = "\n".join(wanted) or False

    def _append_log(self, message):
        """Append a redacted, timestamped line, keeping the last LOG_LIMIT characters."""
        self.ensure_one()
        account = self.deployment_id.app_id.account_id
        stamp = fields.Datetime.now().strftime("%H:%M:%S")
        text = (self.log or "") + f"{stamp} {account._redact(message)}\n"
        if len(text) > LOG_LIMIT:
            text = "[...]\n" + text[-(LOG_LIMIT - 6):]
        self.log = text

    def _record_phase(self, phase, progress):
        """Keep the DigitalOcean deployment's phase and progress ("2/6") this step
        follows, whether read on its own or seen in the app list; a new phase is
        logged. Nothing is written when neither changed (the list shows most
        deployments unchanged at every tick)."""
        self.ensure_one()
        data = self.data or {}
        if phase != data.get("phase"):
            self._append_log(f"Phase {phase} ({progress or '?'} steps).")
        elif not progress or progress == data.get("progress"):
            return
        self._update_data(phase=phase, progress=progress or data.get("progress"))

    def _update_data(self, **values):
        """Merge ``values`` into ``data`` (Json fields must be reassigned, not mutated)."""
        self.ensure_one()
        self.data = {**(self.data or {}), **values}
