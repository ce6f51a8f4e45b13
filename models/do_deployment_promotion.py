from markupsafe import escape

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from .do_deployment import FINAL_STATES


class DoDeployment(models.Model):
    """Promote to production: a done staging deployment's tag and task, deployed to the
    staging app's production counterpart through the normal path (the same rights,
    checks and queue as the Deploy button).
    """

    _inherit = "do.deployment"

    promoted_from_id = fields.Many2one(
        "do.deployment", string="Promoted from", copy=False, readonly=True,
        index="btree_not_null", ondelete="set null",
        help="The staging deployment whose tag and task this production deployment took.")
    promotion_ids = fields.One2many("do.deployment", "promoted_from_id", string="Promoted as")
    promotion_app_id = fields.Many2one(related="app_id.production_app_id",
                                       string="Promotes to")
    can_promote = fields.Boolean(compute="_compute_promotion")
    promote_blocked_reason = fields.Char(
        compute="_compute_promotion",
        help="Why a done staging deployment does not offer Promote to production.")

    @api.depends("kind", "state", "app_id.environment", "app_id.production_app_id",
                 "promotion_ids.state")
    @api.depends_context("uid")
    def _compute_promotion(self):
        for deployment in self:
            problem = deployment._promotion_problem()
            deployment.can_promote = not problem
            # Only a done staging deployment says why it is not offered; the others
            # are simply not promotable.
            deployment.promote_blocked_reason = (
                problem[1] if problem and problem[0] != "PROMOTION_NOT_ALLOWED" else False)

    def _promotion_problem(self):
        """Why this deployment cannot be promoted now, as ``(code, sentence)``; the code
        is ``RIGHTS`` when only the user's rights stand in the way. None if it can."""
        self.ensure_one()
        if self.kind != "deploy" or self.environment != "staging" or self.state != "done":
            return ("PROMOTION_NOT_ALLOWED", self.env._(
                "%(name)s is not a done deployment to a staging app (it is a %(env)s %(kind)s, "
                "%(state)s): only a staging deployment that succeeded is promoted to "
                "production. Promote the one that succeeded, or use Deploy.",
                name=self.name, env=self.environment, kind=self.kind, state=self.state))
        target = self.app_id.production_app_id
        if not target:
            return ("NO_PRODUCTION_COUNTERPART", self.env._(
                "The staging app %(app)s has no production counterpart, so there is nothing "
                "to promote %(name)s to: a Deployment Manager sets it on the app's form.",
                app=self.app_id.name, name=self.name))
        under_way = self.promotion_ids.filtered(lambda p: p.state not in FINAL_STATES)
        if under_way:
            return ("PROMOTION_NOT_ALLOWED", self.env._(
                "%(name)s is already being promoted: %(promotion)s is %(state)s. Wait for it "
                "to finish.", name=self.name, promotion=under_way[0].name,
                state=under_way[0].state))
        try:
            self._check_environment_right(target)
        except AccessError as error:
            return ("RIGHTS", str(error.args[0]))
        return None

    def action_promote_to_production(self):
        """Deploy this done staging deployment's tag to the app's production counterpart,
        for the same task, through the normal path; open the new deployment."""
        self.ensure_one()
        if problem := self._promotion_problem():
            code, message = problem
            if code == "RIGHTS":
                raise AccessError(message)
            raise UserError(self.env._("%(code)s: %(message)s", code=code, message=message))
        target = self.app_id.production_app_id
        target._check_image_available(self.image_tag)
        promotion = self.create({
            "task_id": self.task_id.id,
            "app_id": target.id,
            "image_tag": self.image_tag,
            "note": self.env._("Promotion of %(name)s (%(tag)s, done on %(app)s).",
                               name=self.name, tag=self.image_tag, app=self.app_id.name),
            "requested_by_id": self.env.uid,
        })
        promotion.sudo().promoted_from_id = self
        promotion._message_log(body=escape(self.env._(
            "Promoted from %(name)s by %(user)s.", name=self.name, user=self.env.user.name)))
        self._message_log(body=escape(self.env._(
            "Promoted to production as %(promotion)s (%(app)s) by %(user)s.",
            promotion=promotion.name, app=target.name, user=self.env.user.name)))
        promotion.action_start()
        return promotion._get_form_action()
