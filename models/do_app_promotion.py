from odoo import api, fields, models
from odoo.exceptions import ValidationError


class DoApp(models.Model):
    """Promotion between environments: a staging app names the production app that its
    tested tags go to next (*Promote to production* on its done deployments).

    The relation is kept from the staging side (one production app per staging app,
    several staging apps may feed one production app); ``staging_app_ids`` reads it
    from the production side, e.g. for a *tested in staging* gate.
    """

    _inherit = "do.app"

    production_app_id = fields.Many2one(
        "do.app", string="Production counterpart", ondelete="set null", check_company=True,
        index="btree_not_null", domain="[('environment', '=', 'production'), ('id', '!=', id)]",
        help="The production app this staging app's deployments are promoted to, with the "
             "same tag and task (Promote to production on a done deployment).")
    staging_app_ids = fields.One2many(
        "do.app", "production_app_id", string="Staging counterparts",
        help="The staging apps whose deployments are promoted to this app.")

    @api.constrains("production_app_id", "environment")
    def _check_production_counterpart(self):
        for app in self:
            target = app.production_app_id
            if target and app.environment != "staging":
                raise ValidationError(self.env._(
                    "%(app)s is a production app: only a staging app has a production "
                    "counterpart. Clear it, or make %(app)s a staging app.", app=app.name))
            if target and target.environment != "production":
                raise ValidationError(self.env._(
                    "%(target)s is not a production app, so %(app)s cannot be promoted to it: "
                    "choose a production app.", target=target.name, app=app.name))
            if app.environment != "production" and app.staging_app_ids:
                raise ValidationError(self.env._(
                    "%(app)s is the production counterpart of %(staging)s: it stays a "
                    "production app until they name another one.",
                    app=app.name, staging=", ".join(app.staging_app_ids.mapped("name"))))
