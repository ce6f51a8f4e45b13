from odoo import api, fields, models

from ..engine import gates

DECISIONS = [("approve", "Approved"), ("reject", "Rejected")]


class DoDeploymentApproval(models.Model):
    """One approver's decision on a deployment, bound to what it was about: the app,
    the tag and the hash of the spec. A later change of tag or spec voids it."""

    _name = "do.deployment.approval"
    _description = "Deployment Approval"
    _order = "decided_at desc, id desc"

    deployment_id = fields.Many2one("do.deployment", required=True, ondelete="cascade",
                                    index=True)
    company_id = fields.Many2one(related="deployment_id.company_id", store=True)
    user_id = fields.Many2one("res.users", string="Approver", required=True)
    decision = fields.Selection(DECISIONS, required=True)
    comment = fields.Text()
    decided_at = fields.Datetime(required=True, default=fields.Datetime.now)
    app_id = fields.Many2one("do.app", required=True)
    image_tag = fields.Char(required=True)
    spec_hash = fields.Char(required=True)
    validity = fields.Selection(
        [("counted", "Counted"), ("expired", "Expired"), ("voided", "Voided"),
         ("ignored", "Ignored")],
        compute="_compute_validity",
        help="Voided: the tag or spec changed since. Expired: older than the app allows.")

    @api.depends("deployment_id.gate_ids.result")
    def _compute_validity(self):
        for approval in self:
            gate = approval.deployment_id.gate_ids.filtered(lambda g: g.gate == gates.APPROVAL)
            data = ((gate[:1].result or {}).get("data")) or {}
            by = str(approval.user_id.id)
            validity = "counted"
            for key in ("voided", "expired", "ignored"):
                if by in data.get(key, ()):
                    validity = key
            approval.validity = validity

    def _to_engine(self):
        self.ensure_one()
        return gates.Approval(
            by=str(self.user_id.id), at=self.decided_at,
            binding=gates.Binding(str(self.app_id.id), self.image_tag, self.spec_hash),
            approved=self.decision == "approve", comment=self.comment or "",
            name=self.user_id.name)
