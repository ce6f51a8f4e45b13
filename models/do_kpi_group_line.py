from odoo import api, fields, models


class DoKpiGroupLine(models.AbstractModel):
    """A report line of one group of deployments: the whole period, or one project,
    app or customer (or the deployments that have none), as on the dashboard and DORA.
    Each report line gives it its ``dimension`` selection and the link to its report."""

    _name = "do.kpi.group.line"
    _description = "Report group line"

    sequence = fields.Integer()
    name = fields.Char(required=True)
    project_id = fields.Many2one("project.project")
    app_id = fields.Many2one("do.app")
    partner_id = fields.Many2one("res.partner", string="Customer")

    @api.model
    def _group_values(self, dimension, field, key, sequence):
        """The values that name a line's group: ``key`` is the group's value of
        ``field`` (a record or a selection value), empty for those that have none."""
        values = {"dimension": dimension, "sequence": sequence,
                  "name": self._group_name(dimension, field, key)}
        if field and key:
            values[field] = key.id if isinstance(key, models.BaseModel) else key
        return values

    @api.model
    def _group_name(self, dimension, field, key):
        if not key:
            return {"project": self.env._("No project"),
                    "customer": self.env._("No customer")}.get(dimension, self.env._("None"))
        return key.display_name
