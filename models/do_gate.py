from odoo import fields, models

from ..engine import gates

GATE_KIND_NAMES = {
    gates.IMAGE_EXISTS: "Image exists",
    gates.CI_PASSED: "CI passed",
    gates.TESTED_IN_STAGING: "Tested in staging",
    gates.CONFIRMATION: "Confirmation",
    gates.FREEZE: "Freeze window",
    gates.APPROVAL: "Approval",
}
GATE_STATUSES = [("passed", "Passed"), ("pending", "Pending"), ("failed", "Failed")]


class DoDeploymentGate(models.Model):
    """One gate's last evaluation on a deployment: its status, what it rests on
    (evidence: link, who, when) and, when it failed, the catalogue's code.

    Rewritten at each evaluation (``since`` survives while the status does not
    change); the full engine result is kept in ``result`` for the API.
    """

    _name = "do.deployment.gate"
    _description = "Deployment Gate"
    _order = "deployment_id, sequence, id"

    deployment_id = fields.Many2one("do.deployment", required=True, ondelete="cascade",
                                    index=True)
    company_id = fields.Many2one(related="deployment_id.company_id", store=True)
    sequence = fields.Integer()
    gate = fields.Selection(list(GATE_KIND_NAMES.items()), required=True)
    name = fields.Char(required=True)
    status = fields.Selection(GATE_STATUSES, required=True)
    message = fields.Char()
    error_code_id = fields.Many2one("do.error.code", string="Code")
    severity = fields.Selection(related="error_code_id.severity")
    mitigation = fields.Text(related="error_code_id.mitigation")
    evidence = fields.Char(help="What the status rests on.")
    evidence_link = fields.Char(string="Link")
    evidence_by = fields.Char(string="Who")
    evidence_at = fields.Datetime(string="When")
    since = fields.Datetime(help="When the gate got this status.")
    checked_at = fields.Datetime()
    flagged = fields.Boolean(help="An emergency override decided this gate.")
    result = fields.Json(help="The engine's evaluation, as the API shows it.")

    @staticmethod
    def _naive(moment):
        return moment.replace(tzinfo=None) if moment else False

    @staticmethod
    def _label(result):
        """A gate's name for people: its kind, or the item a confirmation is about."""
        return GATE_KIND_NAMES[result.gate] if result.name == result.gate else result.name

    @classmethod
    def _summary(cls, decision):
        """What the gates decided, in a sentence that names them as the form does."""
        if decision.state == gates.WAITING:
            return f"Waiting for {', '.join(cls._label(r) for r in decision.pending)}."
        if decision.state == gates.REFUSED and decision.failed:
            return (f"Refused by {', '.join(cls._label(r) for r in decision.failed)}: "
                    f"{decision.failed[0].message}")
        return decision.message

    def _values_of(self, result, sequence):
        """Field values of an engine GateResult; the first evidence item is shown."""
        first = result.evidence[0] if result.evidence else None
        code = self.env["do.error.code"]._get_by_code(result.code) if result.code else False
        return {
            "sequence": sequence, "gate": result.gate, "name": self._label(result),
            "status": result.status, "message": result.message,
            "error_code_id": code.id if code else False,
            "evidence": "; ".join(item.label for item in result.evidence) or False,
            "evidence_link": first.link if first else False,
            "evidence_by": first.who if first else False,
            "evidence_at": self._naive(first.when) if first else False,
            "since": self._naive(result.since), "checked_at": self._naive(result.checked_at),
            "flagged": result.flagged, "result": result.to_dict(),
        }
