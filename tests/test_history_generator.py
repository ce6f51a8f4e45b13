from odoo.tests import tagged

from odoo.addons.do_deploy.models.do_deployment_step import (
    DEPLOY_STEPS,
    FINISHED_STEP_STATES,
    ROLLBACK_STEPS,
)

from .common import DeployCommon, load_history_generator


@tagged("post_install", "-at_install")
class TestHistoryGenerator(DeployCommon):
    """tools/generate_history.py writes the history the pipeline would have written: its
    steps and each app's step budgets, and rollbacks with ``rb_revert``, which runs only
    when a rollback failed (and then fails the deployment it rolled back)."""

    def test_history_follows_the_pipeline(self):
        self.staging.budget_step4 = 300  # the app's own budget for monitoring
        Deployment = self.env["do.deployment"]
        before = Deployment.search([], order="id desc", limit=1).id or 0
        load_history_generator().generate(self.env, 2000, 30, 3)
        history = Deployment.search([("id", ">", before)])
        self.assertEqual(len(history), 2000)
        plans = {"deploy": DEPLOY_STEPS, "rollback": ROLLBACK_STEPS}
        for deployment in history:
            plan = plans[deployment.kind]
            steps = deployment.step_ids.sorted("sequence")
            self.assertEqual(steps.mapped("code"), [code for code, _name, _number in plan])
            self.assertEqual(steps.mapped("budget"), [
                deployment.app_id._get_step_budget(number) for _code, _name, number in plan])
        staging = history.filtered(lambda d: d.app_id == self.staging and d.kind == "deploy")
        self.assertEqual(set(self.step(staging, "monitor").mapped("budget")), {300})

        rollbacks = history.filtered(lambda d: d.kind == "rollback")
        done = rollbacks.filtered(lambda d: d.state == "done")
        failed = rollbacks - done
        self.assertTrue(done and failed, "both outcomes in 2000 deployments")
        for rollback in done:
            self.assertEqual(self.step(rollback, "rb_revert").state, "skipped")
            self.assertEqual(rollback.rollback_of_id.state, "rolled_back")
            self.assertEqual(rollback.progress, 100.0)
        for rollback in failed:
            self.assertEqual(rollback.state, "failed")
            failed_step = rollback.step_ids.filtered(lambda s: s.state == "failed")
            self.assertEqual(len(failed_step), 1)
            self.assertEqual(rollback.error_code_id, failed_step.error_code_id)
            self.assertTrue(rollback.error_code_id)
            revert = self.step(rollback, "rb_revert")
            self.assertIn(revert.state, ("done", "warning"))
            self.assertTrue(revert.data["revert_deployment_id"])
            self.assertIn("Rollback reverted", rollback._revert_outcome())
            self.assertEqual(rollback.rollback_of_id.state, "failed")
            finished = rollback.step_ids.filtered(lambda s: s.state in FINISHED_STEP_STATES)
            self.assertEqual(rollback.progress, round(100.0 * len(finished) / 6, 1))
