from datetime import datetime, time, timedelta

from odoo import Command, api, fields, models
from odoo.exceptions import ValidationError


class DoKpiPeriod(models.AbstractModel):
    """A chosen period of history, the same on the dashboard, the stage benchmark
    report and DORA: whole days from ``date_from`` to ``date_to`` included, in UTC
    (the dates deployments are stored in).

    Each report keeps its figures in ``line_ids``, recomputed from the
    ``_line_values()`` it defines whenever the period changes.
    """

    _name = "do.kpi.period"
    _description = "Reporting period"
    _default_period_days = 30
    _line_dimensions = ()  # the line dimensions each shown in its own ``*_line_ids``

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

    @api.depends("date_from", "date_to")
    def _compute_line_ids(self):
        for report in self:
            commands = [Command.clear()]
            if report.date_from and report.date_to and report.date_from <= report.date_to:
                commands += [Command.create(values) for values in report._line_values()]
            report.line_ids = commands

    @api.depends("line_ids")
    def _compute_dimension_lines(self):
        """``<dimension>_line_ids``: the lines of each of ``_line_dimensions``, named
        ``total_line_ids`` for the whole period's ("all")."""
        for report in self:
            for dimension in report._line_dimensions:
                name = "total" if dimension == "all" else dimension
                report[f"{name}_line_ids"] = report.line_ids.filtered(
                    lambda line, dimension=dimension: line.dimension == dimension)

    def _period_bounds(self):
        """[start, end) of the period as naive UTC datetimes."""
        self.ensure_one()
        return (datetime.combine(self.date_from, time.min),
                datetime.combine(self.date_to + timedelta(days=1), time.min))
