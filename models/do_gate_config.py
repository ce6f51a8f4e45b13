from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError

from ..engine import gates
from ..engine.github import split_repository

MANAGER_GROUP = "do_deploy.group_do_deploy_manager"


class DoApp(models.Model):
    """Which quality gates of SOP-DEPLOY-001 a deployment of this app waits on.

    Production requires a change-control approval by default; the other gates
    are switched on per app. Freeze windows are their own records
    (``do.freeze.window``) and always apply.
    """

    _inherit = "do.app"

    gate_image = fields.Boolean(
        string="Image exists",
        help="Wait for (API trigger) or refuse a tag that is not in the registry repository "
             "before the pipeline starts. Step 1 checks the registry again in any case.")
    gate_image_wait = fields.Boolean(
        string="Wait for the Push",
        help="A tag not in the registry yet makes the deployment wait instead of failing "
             "(a CI trigger may come before its image is pushed).")
    gate_ci = fields.Boolean(
        string="CI passed",
        help="The commit the image was built from has every check green on GitHub.")
    github_repository = fields.Char(
        string="GitHub Repository", help="owner/name of the repository the images are built from.")
    ci_required_checks = fields.Char(
        string="Required Checks",
        help="Comma-separated check or status names that must be reported and green, "
             "e.g. tests, lint, image-scan. Any failing check fails the gate anyway.")
    ci_security_checks = fields.Char(
        string="Security Scan Checks",
        help="Comma-separated check names that scan the image: their failure is reported "
             "as IMAGE_SCAN_FAILED.")
    gate_staging = fields.Boolean(
        string="Tested in staging",
        help="The same tag was deployed successfully to the staging counterpart.")
    staging_app_id = fields.Many2one(
        "do.app", string="Staging Counterpart", check_company=True,
        domain="[('environment', '=', 'staging'), ('id', '!=', id)]")
    staging_max_age_hours = fields.Integer(
        string="Staging Max Age (h)", default=168,
        help="How old the successful staging deployment may be; 0: any age.")
    confirmation_item_ids = fields.One2many(
        "do.gate.confirmation.item", "app_id", string="Confirmation Items")
    approval_required = fields.Boolean(
        compute="_compute_approval_required", store=True, readonly=False,
        help="Change-control approval: on by default for production.")
    approver_group_id = fields.Many2one(
        "res.groups",
        default=lambda self: self.env.ref(MANAGER_GROUP, raise_if_not_found=False))
    approvals_required = fields.Integer(default=1)
    approval_valid_hours = fields.Integer(
        string="Approval Valid (h)", default=24,
        help="How long an approval counts after it is given; 0: until the deployment starts.")
    approval_request_expiry_hours = fields.Integer(
        string="Request Expires After (h)", default=72,
        help="A request without enough approvals by then ends with APPROVAL_EXPIRED; "
             "0: never.")
    gate_max_wait_hours = fields.Integer(
        string="Max Wait (h)", default=0,
        help="A deployment waiting on its gates longer than this ends with GATE_TIMEOUT; "
             "0: no limit.")

    @api.depends("environment")
    def _compute_approval_required(self):
        for app in self:
            app.approval_required = app.environment == "production"

    @api.constrains("gate_ci", "github_repository")
    def _check_github_repository(self):
        for app in self.filtered("gate_ci"):
            try:
                split_repository(app.github_repository)
            except ValueError as error:
                raise ValidationError(self.env._(
                    "%(app)s: the CI passed gate needs a GitHub repository: %(problem)s",
                    app=app.name, problem=str(error))) from None

    @api.constrains("gate_image", "registry_repository")
    def _check_registry_repository(self):
        for app in self.filtered(lambda a: a.gate_image and not a.registry_repository):
            raise ValidationError(self.env._(
                "%(app)s: the image exists gate needs the registry repository.", app=app.name))

    @api.constrains("gate_staging", "staging_app_id")
    def _check_staging_app(self):
        for app in self.filtered("gate_staging"):
            if not app.staging_app_id or app.staging_app_id == app:
                raise ValidationError(self.env._(
                    "%(app)s: the tested in staging gate needs another app as staging "
                    "counterpart.", app=app.name))

    @api.constrains("approval_required", "approvals_required", "approver_group_id")
    def _check_approval_policy(self):
        for app in self.filtered("approval_required"):
            if app.approvals_required < 1 or not app.approver_group_id:
                raise ValidationError(self.env._(
                    "%(app)s: an approval needs an approver group and at least one approval.",
                    app=app.name))

    def _requires_manager_to_deploy(self):
        """Production is a Deployment Manager's, unless it waits for an approval: then a
        Deployment User may request a deployment that the approvers let through. False
        for no app (a form not filled in yet)."""
        return any(app.environment == "production" and not app.approval_required
                   for app in self)

    def _approval_policy(self):
        self.ensure_one()
        approvers = self.approver_group_id.sudo().all_user_ids.filtered(
            lambda user: user.active and not user.share)
        return gates.ApprovalPolicy(
            approvers=frozenset(str(user.id) for user in approvers),
            required=self.approvals_required,
            valid_for=timedelta(hours=self.approval_valid_hours)
            if self.approval_valid_hours else None,
            expires_after=timedelta(hours=self.approval_request_expiry_hours)
            if self.approval_request_expiry_hours else None)

    @staticmethod
    def _names_of(text):
        return tuple(name.strip() for name in (text or "").split(",") if name.strip())


class DoGateConfirmationItem(models.Model):
    """An item someone must confirm before a deployment of the app starts, e.g.
    "feature flags configured" (SOP-DEPLOY-001's quality gates)."""

    _name = "do.gate.confirmation.item"
    _description = "Deployment Confirmation Item"
    _order = "sequence, id"

    app_id = fields.Many2one("do.app", required=True, ondelete="cascade", index=True)
    company_id = fields.Many2one(related="app_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(string="Item", required=True)

    _name_app_uniq = models.Constraint(
        "UNIQUE(app_id, name)", "An app lists each confirmation item once.")
