from odoo import api, fields, models

from ..engine.error_catalogue import ERROR_CODES, SEVERITIES

# What the catalogue sets and a Deployment Manager may change.
CATALOGUE_FIELDS = frozenset({"name", "step", "severity", "resolution_minutes", "mitigation"})


class DoErrorCode(models.Model):
    """One SOP-DEPLOY-001 error code.

    The records mirror ``engine.error_catalogue`` so that steps, deployments and
    reports can point at a code and show its severity and mitigation; the
    catalogue is reloaded on every update, except for the fields a Deployment Manager
    changed (``edited_fields``), which keep the manager's text.
    """

    _name = "do.error.code"
    _description = "Deployment Error Code"
    _order = "step, code"
    _rec_name = "code"
    _rec_names_search = ["code", "name"]

    code = fields.Char(required=True, index=True)
    name = fields.Char(string="Description", required=True, translate=True)
    step = fields.Integer(help="Step of SOP-DEPLOY-001 that raises this code.")
    severity = fields.Selection(
        [(severity, severity.capitalize()) for severity in SEVERITIES], required=True
    )
    resolution_minutes = fields.Integer(help="Expected time to resolve; empty means it varies.")
    mitigation = fields.Text(translate=True)
    resolution_label = fields.Char(
        string="Resolution time", compute="_compute_resolution_label",
        help="Expected time to resolve, as the SOP gives it (it varies for some codes).")
    occurrence_count = fields.Integer(compute="_compute_occurrence_count")
    edited_fields = fields.Char(
        readonly=True, copy=False,
        help="Fields a Deployment Manager changed (comma-separated): a module update keeps "
             "them and reloads only the others from the catalogue.")

    _code_uniq = models.Constraint("UNIQUE(code)", "An error code must be unique.")

    def write(self, vals):
        """Remember what a person changed, so that the catalogue does not overwrite it."""
        edited = set(vals) & CATALOGUE_FIELDS
        if edited and not self.env.su:
            for error_code in self:
                fields_before = set(filter(None, (error_code.edited_fields or "").split(",")))
                super(DoErrorCode, error_code).write(
                    {"edited_fields": ",".join(sorted(fields_before | edited))})
        return super().write(vals)

    def _compute_occurrence_count(self):
        counts = dict(
            self.env["do.deployment.step"]._read_group(
                [("error_code_id", "in", self.ids)], ["error_code_id"], ["__count"]
            )
        )
        for error_code in self:
            error_code.occurrence_count = counts.get(error_code, 0)

    @api.depends("resolution_minutes")
    def _compute_resolution_label(self):
        for error_code in self:
            error_code.resolution_label = self.env._(
                "%(minutes)s min", minutes=error_code.resolution_minutes
            ) if error_code.resolution_minutes else self.env._("Varies")

    @api.depends("code", "name")
    def _compute_display_name(self):
        for error_code in self:
            error_code.display_name = f"{error_code.code} - {error_code.name}"

    @api.model
    def _load_catalogue(self):
        """Create or update one record per catalogue entry, with a stable xml id
        ``do_deploy.error_code_<code in lower case>``."""
        existing = {rec.code: rec for rec in self.with_context(active_test=False).search([])}
        xmlids = []
        for entry in ERROR_CODES.values():
            vals = {
                "code": entry.code,
                "name": entry.description,
                "step": entry.step,
                "severity": entry.severity,
                "resolution_minutes": entry.resolution_minutes or 0,
                "mitigation": entry.mitigation,
            }
            record = existing.get(entry.code)
            if record:
                kept = set(filter(None, (record.edited_fields or "").split(",")))
                record.sudo().write({name: value for name, value in vals.items()
                                     if name not in kept})
            else:
                record = self.create(vals)
            xmlids.append({
                "xml_id": f"do_deploy.error_code_{entry.code.lower()}",
                "record": record,
                "noupdate": True,
            })
        self.env["ir.model.data"]._update_xmlids(xmlids)

    @api.model
    def _get_by_code(self, code):
        """The record of ``code``; reload the catalogue once if it is missing."""
        record = self.search([("code", "=", code)], limit=1)
        if not record and code in ERROR_CODES:
            self._load_catalogue()
            record = self.search([("code", "=", code)], limit=1)
        return record
