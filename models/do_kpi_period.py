from datetime import datetime, time, timedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class DoKpiPeriod(models.AbstractModel):
    """A chosen period of history, the same on the dashboard, the stage benchmark
    report and DORA: whole days from ``date_from`` to ``date_to`` included, in UTC
    (the dates deployments are stored in)."""

    _name = "do.kpi.period"
    _description = "Reporting period"
    _default_period_days = 30

    date_from = fields.Date(
        "From", required=True,
        default=lambda self: fields.Date.today() - timedelta(days=self._default_period_days - 1))
    date_to = fields.Date("To", required=True, default=fields.Date.today)

    @api.constrains("date_from", "date_to")
    def _check_period(self):
        for record in self:
            if record.date_from > record.date_to:
                raise ValidationError(self.env._("The period ends before it starts."))

    @api.depends("date_from", "date_to")
    def _compute_display_name(self):
        for record in self:
            record.display_name = self.env._(
                "%(report)s, %(start)s to %(end)s", report=record._description,
                start=record.date_from, end=record.date_to)

    def _period_bounds(self):
        """[start, end) of the period as naive UTC datetimes."""
        self.ensure_one()
        return (datetime.combine(self.date_from, time.min),
                datetime.combine(self.date_to + timedelta(days=1), time.min))
