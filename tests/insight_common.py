"""A crafted deployment history for the KPI, stage benchmark and DORA tests.

Deployments are written as the pipeline leaves them (states, dates, durations,
step data), with no DigitalOcean call: these tests are about what the reports
read, and each expected figure is worked out by hand in the test.
"""

from datetime import datetime, timedelta

from odoo.tests import TransactionCase, new_test_user

JANUARY = (datetime(2026, 1, 1).date(), datetime(2026, 1, 31).date())


class InsightCommon(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.user = new_test_user(cls.env, "insight_user", groups="do_deploy.group_do_deploy_user",
                                 name="Ines Insight")
        account = cls.env["do.account"].create({
            "name": "Insight account", "backend": "simulator",
            "api_url": "http://127.0.0.1:9", "token": "insight-token"})
        cls.shop = cls.env["do.app"].create({
            "name": "shop", "account_id": account.id, "do_app_id": "shop-id",
            "environment": "production"})
        cls.shop_staging = cls.env["do.app"].create({
            "name": "shop-staging", "account_id": account.id, "do_app_id": "shop-staging-id",
            "environment": "staging"})
        cls.acme = cls.env["res.partner"].create({"name": "Acme"})
        cls.globex = cls.env["res.partner"].create({"name": "Globex"})
        cls.relaunch = cls.env["project.project"].create({"name": "Relaunch"})
        cls.payments = cls.env["project.project"].create({"name": "Payments"})
        cls.login_task = cls._task("Login page", cls.relaunch, cls.acme, datetime(2026, 1, 1))
        cls.checkout_task = cls._task("Checkout", cls.payments, cls.globex, datetime(2026, 1, 3))

    @classmethod
    def _task(cls, name, project, partner, created):
        task = cls.env["project.task"].create({
            "name": name, "project_id": project.id, "partner_id": partner.id})
        cls.env.cr.execute("UPDATE project_task SET create_date = %s WHERE id = %s",
                           [created, task.id])
        task.invalidate_recordset(["create_date"])
        return task

    @classmethod
    def make(cls, app, state, ended, seconds, *, task=None, kind="deploy", steps=None,
             rollback_ended=None):
        """A finished deployment of ``app`` that ended at ``ended`` after ``seconds``;
        ``steps`` maps a step code to (seconds, state, data). ``rollback_ended``: a
        done rollback run was made for it, ending then."""
        started = ended - timedelta(seconds=seconds)
        durations = {f"duration_{code}": values[0] for code, values in (steps or {}).items()
                     if values[0] is not None}
        deployment = cls.env["do.deployment"].sudo().create({
            "app_id": app.id, "task_id": task.id if task else False, "kind": kind,
            "image_tag": "v1.0.0" if kind == "deploy" else False, "state": state,
            "start_date": started, "end_date": ended, "duration": seconds, **durations})
        clock = started
        for code, (duration, step_state, data) in (steps or {}).items():
            step = deployment.step_ids.filtered(lambda s, code=code: s.code == code)
            step_seconds = duration or 0
            step.write({"state": step_state, "start_date": clock,
                        "end_date": clock + timedelta(seconds=step_seconds),
                        "duration": step_seconds, "data": data or False})
            clock += timedelta(seconds=step_seconds)
        if rollback_ended:
            rollback = cls.env["do.deployment"].sudo().create({
                "app_id": app.id, "kind": "rollback", "state": "done",
                "rollback_of_id": deployment.id, "start_date": ended,
                "end_date": rollback_ended,
                "duration": (rollback_ended - ended).total_seconds()})
            deployment.sudo().rollback_id = rollback
        return deployment

    def january_report(self, model, **values):
        """A report of ``model`` on January, made by the Deployment User."""
        return self.env[model].with_user(self.user).create({
            "date_from": JANUARY[0], "date_to": JANUARY[1], **values})

    def line(self, report, dimension, name):
        lines = report.line_ids.filtered(
            lambda line: line.dimension == dimension and line.name == name)
        self.assertEqual(len(lines), 1, f"one {dimension} line {name}")
        return lines

    def assertLine(self, line, **expected):
        for field, value in expected.items():
            if isinstance(value, float):
                self.assertAlmostEqual(line[field], value, places=6, msg=f"{line.name}: {field}")
            else:
                self.assertEqual(line[field], value, f"{line.name}: {field}")
