from odoo.exceptions import AccessError, UserError, ValidationError

from .common import DeployCommon


class TestPromote(DeployCommon):
    """Promote to production: a done staging deployment's tag and task go to the staging
    app's production counterpart through the normal path."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.staging.production_app_id = cls.production

    def done_on_staging(self, tag="v1.2.0", user=None):
        deployment = self.deploy(tag, user=user or self.manager)
        self.run_until_idle()
        self.assertEqual(deployment.state, "done")
        return deployment

    def test_promotion_deploys_the_same_tag_and_task_to_production(self):
        staging = self.done_on_staging("v1.2.0")
        self.assertTrue(staging.with_user(self.manager).can_promote)
        self.assertFalse(staging.with_user(self.manager).promote_blocked_reason)

        action = staging.with_user(self.manager).action_promote_to_production()

        promotion = self.env["do.deployment"].browse(action["res_id"])
        self.assertEqual(promotion.app_id, self.production)
        self.assertEqual(promotion.environment, "production")
        self.assertEqual(promotion.image_tag, "v1.2.0")
        self.assertEqual(promotion.task_id, self.task)
        self.assertEqual(promotion.requested_by_id, self.manager)
        self.assertEqual(promotion.promoted_from_id, staging)
        self.assertEqual(staging.promotion_ids, promotion)
        self.assertEqual(promotion.state, "queued")
        self.assertEqual(len(promotion.step_ids), 8)
        self.assertIn(f"Promoted from {staging.name}", promotion.message_ids.mapped("preview")[0])
        # Under way, it cannot be promoted twice.
        self.assertFalse(staging.can_promote)
        with self.assertRaisesRegex(UserError, "^PROMOTION_NOT_ALLOWED: .* already being promoted"):
            staging.with_user(self.manager).action_promote_to_production()

        self.run_until_idle()
        self.assertEqual(promotion.state, "done")
        live = self.sim.get_app(self.production.do_app_id)
        self.assertEqual(live["spec"]["services"][0]["image"]["tag"], "v1.2.0")
        self.assertEqual(self.production.live_version, "v1.2.0")

    def test_only_a_done_staging_deployment_is_promoted(self):
        canceled = self.deploy("v1.3.0")
        canceled.action_cancel()
        self.assertEqual(canceled.state, "canceled")
        on_production = self.deploy("v1.1.0", app=self.production)
        self.run_until_idle()
        self.assertEqual(on_production.state, "done")
        rollback = on_production.with_user(self.manager).action_rollback()
        rollback = self.env["do.deployment"].browse(rollback["res_id"])
        self.run_until_idle()
        self.assertEqual(rollback.state, "done")
        count = self.env["do.deployment"].search_count([])
        for refused in (canceled, self.deploy("v1.3.0", start=False), on_production, rollback):
            deployment = refused.with_user(self.manager)
            self.assertFalse(deployment.can_promote, deployment.name)
            self.assertFalse(deployment.promote_blocked_reason, deployment.name)
            with self.assertRaisesRegex(UserError, "^PROMOTION_NOT_ALLOWED: "):
                deployment.action_promote_to_production()
        self.assertEqual(self.env["do.deployment"].search_count([]), count + 1)  # the draft

    def test_a_staging_app_without_counterpart_says_why(self):
        staging = self.done_on_staging("v1.2.0")
        self.staging.production_app_id = False
        staging = staging.with_user(self.manager)
        self.assertFalse(staging.can_promote)
        self.assertIn("has no production counterpart", staging.promote_blocked_reason)
        with self.assertRaisesRegex(UserError, "^NO_PRODUCTION_COUNTERPART: "):
            staging.action_promote_to_production()
        self.assertFalse(self.env["do.deployment"].search([("app_id", "=", self.production.id)]))

    def test_a_deployment_user_cannot_promote_while_production_needs_a_manager(self):
        """Production keeps its rights: a Deployment User sees why Promote is not offered,
        and the call is refused without creating anything."""
        staging = self.done_on_staging("v1.2.0", user=self.user).with_user(self.user)
        self.assertFalse(staging.can_promote)
        self.assertIn("Only a Deployment Manager can deploy to production",
                      staging.promote_blocked_reason)
        with self.assertRaisesRegex(AccessError, "Only a Deployment Manager"):
            staging.action_promote_to_production()
        self.assertFalse(self.env["do.deployment"].search([("app_id", "=", self.production.id)]))
        self.assertTrue(staging.with_user(self.manager).can_promote)

    def test_the_counterpart_is_a_production_app_of_a_staging_app(self):
        other_staging = self._create_app("odoo-staging-2", "staging")
        refused = [
            (self.staging, "production_app_id", other_staging, "not a production app"),
            (self.production, "production_app_id", self.production, "only a staging app has"),
            (self.production, "environment", "staging", "stays a production app"),
        ]
        for app, field, value, message in refused:
            with self.assertRaisesRegex(ValidationError, message), self.env.cr.savepoint():
                app.write({field: value.id if hasattr(value, "id") else value})
            self.env.invalidate_all()
        self.assertEqual(self.production.staging_app_ids, self.staging)
        other_staging.production_app_id = self.production
        self.assertEqual(self.production.staging_app_ids, self.staging | other_staging)

    def test_a_deployment_users_promotion_waits_for_productions_approval(self):
        """Promotion goes through production's gates: where production requires approval,
        a Deployment User may promote, and the production deployment waits for a manager."""
        self.production.approval_required = True
        staging = self.done_on_staging("v1.2.0", user=self.user).with_user(self.user)
        self.assertTrue(staging.can_promote, staging.promote_blocked_reason)

        action = staging.action_promote_to_production()

        promotion = self.env["do.deployment"].browse(action["res_id"])
        self.assertEqual((promotion.app_id, promotion.image_tag, promotion.task_id),
                         (self.production, "v1.2.0", self.task))
        self.assertEqual(promotion.state, "waiting")
        self.run_until_idle()
        self.assertEqual(promotion.state, "waiting", "the runner does not see it unapproved")
        with self.assertRaises(AccessError):
            promotion.with_user(self.user)._record_approval(True, "my own")
        promotion.with_user(self.manager)._record_approval(True, "CHG-7 approved")
        self.assertEqual(promotion.state, "queued")
        self.run_until_idle()
        self.assertEqual(promotion.state, "done")
        self.assertEqual(self.production.live_version, "v1.2.0")
