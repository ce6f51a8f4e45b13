from odoo import api, fields, models
from odoo.exceptions import ValidationError

from odoo.addons.base.models.res_partner import _tz_get

from ..engine import freeze

WEEKDAY_SELECTION = [(str(index), day.capitalize()) for index, day in enumerate(freeze.WEEKDAYS)]


class DoFreezeWindow(models.Model):
    """A period in which deployments wait or are refused (Octopus' deployment freezes,
    Spinnaker's execution windows): every week (Friday 16:00 - Monday 08:00 in a time
    zone, DST-correct) or once (a month-end close), for a company, an environment, an
    app or any mix of them (empty: everywhere)."""

    _name = "do.freeze.window"
    _description = "Deployment Freeze Window"
    _order = "sequence, id"

    name = fields.Char(required=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(default=10)
    kind = fields.Selection([("weekly", "Every week"), ("one_off", "Once")], required=True,
                            default="weekly")
    mode = fields.Selection(
        [(freeze.WAIT, "Deployments wait"), (freeze.REFUSE, "Deployments are refused")],
        required=True, default=freeze.WAIT)
    company_id = fields.Many2one("res.company", help="Empty: every company.")
    environment = fields.Selection(
        [("staging", "Staging"), ("production", "Production")], help="Empty: both.")
    app_id = fields.Many2one("do.app", help="Empty: every app.")
    timezone = fields.Selection(_tz_get, required=True,
                                default=lambda self: self.env.user.tz or "UTC")
    start_day = fields.Selection(WEEKDAY_SELECTION, default="4")
    start_time = fields.Float(default=16.0, help="Wall-clock time in the time zone.")
    end_day = fields.Selection(WEEKDAY_SELECTION, default="0")
    end_time = fields.Float(default=8.0)
    date_start = fields.Datetime(string="From")
    date_end = fields.Datetime(string="Until")
    description = fields.Char(compute="_compute_description")

    @api.depends("kind", "start_day", "start_time", "end_day", "end_time", "date_start",
                 "date_end", "timezone")
    def _compute_description(self):
        days = dict(WEEKDAY_SELECTION)
        for window in self:
            if window.kind == "weekly":
                start = freeze.time_of(window.start_time or 0.0)
                end = freeze.time_of(window.end_time or 0.0)
                window.description = (
                    f"{days.get(window.start_day, '?')} {start:%H:%M} - "
                    f"{days.get(window.end_day, '?')} {end:%H:%M} ({window.timezone})")
            else:
                window.description = (
                    f"{window.date_start or '?'} - {window.date_end or '?'} UTC")

    @api.constrains("kind", "start_day", "start_time", "end_day", "end_time", "date_start",
                    "date_end", "timezone", "mode")
    def _check_window(self):
        for window in self:
            try:
                window._to_engine()
            except (ValueError, TypeError) as error:
                raise ValidationError(self.env._(
                    "The freeze window %(name)s is not valid: %(problem)s",
                    name=window.name, problem=str(error))) from None

    def _to_engine(self):
        self.ensure_one()
        scope = freeze.Scope(
            company=str(self.company_id.id) if self.company_id else None,
            environment=self.environment or None,
            app=str(self.app_id.id) if self.app_id else None)
        if self.kind == "weekly":
            if not (self.start_day and self.end_day):
                raise ValueError("a weekly window has a start day and an end day")
            return freeze.WeeklyWindow(
                self.name, int(self.start_day), self.start_time, int(self.end_day),
                self.end_time, self.timezone, scope, self.mode)
        if not (self.date_start and self.date_end):
            raise ValueError("a one-off window has a start and an end")
        # Odoo stores datetimes in UTC: aware datetimes keep the engine from reading them
        # as wall time of the window's zone.
        return freeze.OneOffWindow(self.name, freeze.as_utc(self.date_start),
                                   freeze.as_utc(self.date_end), self.timezone, scope, self.mode)

    @api.model
    def _calendar(self, company):
        """The freeze calendar of every active window that may apply in ``company``."""
        windows = self.sudo().search([("company_id", "in", (False, company.id))])
        return freeze.FreezeCalendar([window._to_engine() for window in windows])
