from odoo import api, fields, models
from odoo.exceptions import ValidationError

# SOP-DEPLOY-001 step 7, used when an app has no checks of its own.
DEFAULT_ENDPOINT_CHECKS = [
    {"path": "/web/login", "kind": "page", "status": 200, "contains": "Login"},
    {"path": "/web/static/src/css/base.css", "kind": "static", "status": 200},
    {"path": "/api/v1/health", "kind": "api", "status": 200, "json_field": "status",
     "json_value": "ok"},
]


class DoAppEndpointCheck(models.Model):
    """One endpoint the post-deployment validation (step 7) requests."""

    _name = "do.app.endpoint.check"
    _description = "Deployment Endpoint Check"
    _order = "sequence, id"

    app_id = fields.Many2one("do.app", required=True, ondelete="cascade", index=True)
    sequence = fields.Integer(default=10)
    path = fields.Char(required=True, default="/")
    kind = fields.Selection(
        [("page", "Page"), ("static", "Static asset"), ("api", "API")],
        required=True,
        default="page",
        help="Decides the error code of a failure: ENDPOINT_404, STATIC_ASSET_MISSING "
        "or API_ERROR.",
    )
    expected_status = fields.Integer(default=200)
    expected_text = fields.Char(help="Text the body must contain.")
    json_field = fields.Char(string="JSON Field", help="Field of a JSON body to compare.")
    json_value = fields.Char(string="JSON Value")
    max_ms = fields.Integer(
        string="Max Response Time (ms)",
        help="Slower answers fail with PERFORMANCE_DEGRADATION; 0 means no limit.",
    )
    company_id = fields.Many2one(related="app_id.company_id", store=True)

    @api.constrains("path")
    def _check_path(self):
        for check in self:
            if not (check.path or "").startswith("/"):
                raise ValidationError(self.env._(
                    "The path of an endpoint check starts with '/' (got %(path)r).",
                    path=check.path))

    def _to_check(self):
        """The check in the shape ``engine.checks.check_endpoints`` expects."""
        self.ensure_one()
        return {
            "path": self.path,
            "kind": self.kind,
            "status": self.expected_status or 200,
            "contains": self.expected_text or None,
            "json_field": self.json_field or None,
            "json_value": self.json_value or None,
            "max_ms": self.max_ms or None,
        }
