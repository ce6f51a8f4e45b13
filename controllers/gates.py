"""The approval page an approver reaches from the activity or its e-mail, and the gates
as the API shows them."""

from werkzeug.exceptions import NotFound

from odoo import http
from odoo.exceptions import AccessError, UserError
from odoo.http import request

from .common import datetime_json


def gates_json(deployment):
    """What ``GET /api/v1/deployments/<id>`` says of the gates: each one's status,
    evidence and code, the approvals, and an emergency override."""
    return {
        "summary": deployment.gate_summary or None,
        "waiting_since": datetime_json(deployment.waiting_since),
        "checked_at": datetime_json(deployment.gates_checked_at),
        "emergency_override": {
            "by": deployment.freeze_override_by_id.name,
            "reason": deployment.freeze_override_reason,
            "at": datetime_json(deployment.freeze_override_at),
        } if deployment.freeze_override_at else None,
        "items": [{
            "gate": gate.gate, "name": gate.name, "status": gate.status,
            "message": gate.message, "code": gate.error_code_id.code or None,
            "severity": gate.severity or None, "mitigation": gate.mitigation or None,
            "evidence": (gate.result or {}).get("evidence", []),
            "since": datetime_json(gate.since), "flagged": gate.flagged,
        } for gate in deployment.gate_ids.sorted("sequence")],
        "approvals": [{
            "by": approval.user_id.name, "decision": approval.decision,
            "comment": approval.comment or None, "validity": approval.validity,
            "at": datetime_json(approval.decided_at),
        } for approval in deployment.approval_ids],
    }


class DoDeployApproval(http.Controller):
    @http.route("/do_deploy/approval/<int:deployment_id>", type="http", auth="user",
                methods=["GET", "POST"], readonly=False)
    def approval(self, deployment_id, decision="approve", comment="", **_kwargs):
        """GET: the request, its gates and a comment box; POST: approve or reject, then
        the deployment's form."""
        deployment = request.env["do.deployment"].browse(deployment_id).exists()
        if not deployment or not deployment.has_access("read"):
            raise NotFound()
        error = None
        if request.httprequest.method == "POST":
            try:
                deployment._record_approval(decision == "approve", comment)
            except (UserError, AccessError) as problem:
                error = str(problem.args[0])
            else:
                return request.redirect(f"/odoo/do.deployment/{deployment.id}")
        return request.render("do_deploy.do_gate_approval_page", {
            "deployment": deployment, "decision": decision if decision in (
                "approve", "reject") else "approve",
            "comment": comment, "error": error,
        })
