"""Steps 1-8 of SOP-DEPLOY-001 on ``do.deployment``: one ``_step_<code>`` each.

Each handler runs one short action and returns None when its step is done or
the seconds until it wants to run again (a poll); it raises DeployError to
fail the step. The driver that calls them is in ``do_deployment_runner.py``.
"""

from urllib.parse import urlsplit

from markupsafe import Markup

from odoo import fields, models
from odoo.exceptions import AccessError, UserError, ValidationError

from ..engine import app_watch, appspec, checks
from ..engine import pipeline_policy as policy
from ..engine.deployment import (
    FAILED_PHASES,
    deployment_seconds,
    expected_seconds,
    failure_error,
    spec_version,
    timeout_error,
)
from ..engine.errors import DeployError


class DoDeployment(models.Model):
    # One model over several files, one per concern (DESIGN.md), as Odoo splits account.move.
    _inherit = "do.deployment"  # pylint: disable=consider-merging-classes-inherited

    # ------------------------------------------------------------------
    # DigitalOcean helpers (the rollback steps use them too)
    # ------------------------------------------------------------------

    def _client(self):
        return self.app_id.account_id._get_backend()

    def _step_by_code(self, code):
        return self.step_ids.filtered(lambda s: s.code == code)[:1]

    def _retagged_components(self):
        """The component names this deployment retags; None for every image component.

        Versions follow them: the version before (``previous_version``) and the
        one a spec deploys are read on these components, since the others keep
        theirs.
        """
        return policy.component_names(self.components) or None

    def _expected_seconds(self, client):
        """How long the app's deployments take to reach ACTIVE, from history.

        Odoo's own history first (the median of the last successful monitors);
        else one call for DigitalOcean's recent deployments.
        """
        monitors = self.env["do.deployment.step"].search([
            ("deployment_id.app_id", "=", self.app_id.id),
            ("deployment_id", "!=", self.id),
            ("code", "in", policy.MONITOR_STEPS),
            ("state", "=", "done"),
        ], order="id desc", limit=policy.HISTORY_SIZE)
        seconds = policy.expected_from_history(
            (monitor.data or {}).get("active_after") for monitor in monitors)
        if seconds:
            return seconds
        try:
            history = client.list_deployments(self.app_id.do_app_id,
                                              per_page=policy.HISTORY_SIZE)
        except DeployError:
            return None
        return expected_seconds(history, exclude_id=self.do_deployment_id)

    # ------------------------------------------------------------------
    # Steps 1-8 (one short action each; None = done, a number = poll again)
    # ------------------------------------------------------------------

    def _step_update_spec(self, step):
        """Step 1: fetch the live spec, set the tag, validate, check the tag, propose."""
        client = self._client()
        app = client.get_app(self.app_id.do_app_id)
        components = self._retagged_components()
        new_spec = appspec.set_image_tag(app.get("spec") or {}, self.image_tag, components)
        appspec.load_spec(appspec.dump_spec(new_spec))
        warnings = appspec.validate_spec(new_spec)
        if self.app_id.registry_repository:
            self.app_id._check_tag_in_registry(client, self.image_tag)
        proposal = client.propose(new_spec, app_id=self.app_id.do_app_id)
        active = app.get("active_deployment") or {}
        ingress = app.get("live_url") or app.get("default_ingress")
        if ingress and not self.app_id.ingress_url:
            self.app_id.ingress_url = ingress
        self.write({
            "previous_do_deployment_id": active.get("id") or False,
            "previous_version": spec_version(active.get("spec") or app.get("spec"),
                                             components) or False,
            "target_spec": new_spec,
        })
        for warning in warnings:
            step._append_log(f"Warning: {warning}")
        step._update_data(
            previous_deployment_id=active.get("id"),
            previous_version=self.previous_version or None,
            known_deployment_ids=policy.deployment_ids_of(app),
            app_cost=proposal.get("app_cost"),
            warnings=warnings,
        )
        step._append_log(
            f"Spec ready: {self.image_tag} on "
            f"{', '.join(components) if components else 'every image component'}; "
            f"previous version {self.previous_version or 'unknown'}.")

    def _step_apply_spec(self, step):
        """Step 2: PUT the spec - which also creates the deployment (exactly once)."""
        client = self._client()
        app_id = self.app_id.do_app_id
        spec = self.sudo().target_spec
        known = self._step_by_code("update_spec").data.get("known_deployment_ids") or []
        components = self._retagged_components()

        def applied(app):
            """What an earlier PUT left on the app; None if it never arrived."""
            created = policy.new_deployment(app, known, self.image_tag, components,
                                            action="UPDATE_SPEC")
            if created or (spec_version(app.get("spec"), components) == self.image_tag
                           and self.image_tag != self.previous_version):
                return {"deployment_id": created}
            return None

        def update():
            app = client.update_app(app_id, spec, update_all_source_versions=self.force_rebuild)
            return {"deployment_id": policy.deployment_of_update(app, known)}

        return self._call_once(
            step, "the spec update", call=update, find=applied,
            adopt=lambda result: self._store_applied(step, result["deployment_id"]))

    def _store_applied(self, step, created_deployment_id):
        # DigitalOcean deploys every spec change; no deployment means nothing changed.
        step._update_data(applied=bool(created_deployment_id),
                          created_deployment_id=created_deployment_id)
        step._append_log(
            f"Spec applied; DigitalOcean created deployment {created_deployment_id}."
            if created_deployment_id else
            "Spec applied; DigitalOcean created no deployment (the spec did not change).")

    def _step_create_deployment(self, step):
        """Step 3: adopt the deployment the update created, or create one (exactly once).

        The SOP runs ``create-deployment`` after ``apps update``, but the PUT
        already deploys (reference §5): a second call would build twice. A
        deployment is created here only when the update created none.
        """
        created = self._step_by_code("apply_spec").data.get("created_deployment_id")
        if created:
            self.do_deployment_id = created
            step._append_log(f"Adopted deployment {created}, created by the spec update.")
            return None
        client = self._client()
        app_id = self.app_id.do_app_id
        data = step.data or {}
        if data.get("intent_at"):
            known = data.get("known_deployment_ids") or []
        else:
            known = policy.deployment_ids_of(client.get_app(app_id))
        return self._call_once(
            step, "the deployment", intent={"known_deployment_ids": known},
            call=lambda: client.create_deployment(app_id, force_build=self.force_rebuild)["id"],
            find=lambda app: policy.new_deployment(app, known),
            adopt=lambda deployment_id: self._store_created_deployment(step, deployment_id))

    def _store_created_deployment(self, step, deployment_id):
        """Record the DigitalOcean deployment a mutating call created."""
        self.do_deployment_id = deployment_id
        step._update_data(deployment_id=deployment_id)
        step._append_log(f"Created deployment {deployment_id}.")

    def _step_monitor(self, step):
        """Step 4: poll the deployment's phase until ACTIVE (or a failure)."""
        return self._poll_do_deployment(step)

    def _poll_do_deployment(self, step, deployment_id=None, cancel_on_timeout=True):
        """One poll of a DigitalOcean deployment (ours unless ``deployment_id``): None once
        ACTIVE, else the seconds until the next poll; raises its SOP error when it failed
        or ran out of time (canceling it on DigitalOcean if ``cancel_on_timeout``)."""
        client = self._client()
        deployment_id = deployment_id or self.do_deployment_id
        data = step.data or {}
        if "expected_seconds" not in data:
            step._update_data(expected_seconds=self._expected_seconds(client))
            data = step.data
        deployment = client.get_deployment(self.app_id.do_app_id, deployment_id)
        phase = deployment.get("phase") or "UNKNOWN"
        progress = deployment.get("progress") or {}
        step._record_phase(
            phase, f"{progress.get('success_steps', 0)}/{progress.get('total_steps', 0)}")
        elapsed = (fields.Datetime.now() - step.start_date).total_seconds()
        step._update_data(polls=data.get("polls", 0) + 1)
        if phase == "ACTIVE":
            # The version of the retagged components, and what the ingress will report
            # once the deployment serves: the version of the spec's first image component.
            spec = deployment.get("spec")
            step._update_data(active_after=deployment_seconds(deployment) or elapsed,
                              version=spec_version(spec, self._retagged_components()),
                              served_version=spec_version(spec))
            step._append_log(f"Deployment {deployment_id} is ACTIVE.")
            return None
        if phase in FAILED_PHASES:
            raise self._deployment_failure(client, step, deployment)
        if elapsed > self.app_id.deploy_timeout:
            if cancel_on_timeout:
                try:
                    client.cancel_deployment(self.app_id.do_app_id, deployment_id)
                    step._append_log("Canceled the deployment on DigitalOcean.")
                except DeployError as error:
                    step._append_log(f"Could not cancel the deployment: {error.code}.")
            raise timeout_error(phase, elapsed, self.app_id.deploy_timeout)
        delay = policy.monitor_poll_delay(phase, elapsed, data.get("expected_seconds"),
                                          step.budget)
        if step.code in policy.MONITOR_STEPS:
            # The runner watches step 4, the rollback's wait and the revert's follow-up
            # through the app list (_watch_accounts) and makes them due as soon as the
            # list shows a new phase or an end: their own read is only a fallback.
            return max(delay, app_watch.FALLBACK_POLL)
        return delay

    def _deployment_failure(self, client, step, deployment):
        """The SOP error of a failed DigitalOcean deployment, with its log on the step."""
        error = failure_error(deployment)
        component, log_type = error.details["component"], error.details["log_type"]
        if log_type:
            try:
                log = client.get_logs(self.app_id.do_app_id, deployment["id"],
                                      component=component, log_type=log_type)
            except DeployError as log_error:
                log = f"({log_type} log not available: {log_error.code})"
            if log:
                step._append_log(f"{log_type} log of {component or 'the app'}:\n{log}")
        return error

    def _step_health_check(self, step):
        """Step 5: one failure warns and retries; two consecutive fail the step."""
        return self._check_health(step)

    def _check_health(self, step):
        """One health check: None when healthy, else the seconds until the next one;
        raises once enough checks in a row failed to fail the step."""
        result = self.app_id.account_id._run_check(
            "check_health", self._ingress_url(), path=self.app_id.health_path,
            budget_seconds=min(10.0, float(step.budget or 10)))
        data = step.data or {}
        history = [*data.get("checks", []), result.to_dict()]
        if result.ok:
            step._update_data(checks=history[-10:], consecutive_failures=0)
            step._append_log(result.message)
            return None
        failures = data.get("consecutive_failures", 0) + 1
        step._update_data(checks=history[-10:], consecutive_failures=failures, warning=True)
        delay = policy.health_retry(failures)
        if delay is None:
            raise DeployError(result.code or "HEALTH_CHECK_FAIL",
                              f"{result.message} (second consecutive failure)")
        step._append_log(f"Warning: {result.code}: {result.message} "
                         f"Checking again in {delay:.0f} s.")
        return delay

    def _ingress_url(self):
        url = self.app_id.ingress_url
        if not url:
            raise DeployError("LOAD_BALANCER_ERROR",
                              f"The app {self.app_id.name} has no ingress URL.")
        return url

    def _step_traffic_switch(self, step):
        """Step 6: our deployment is active and the ingress serves its version.

        The version the ingress reports is that of the new spec's first image
        component: the tag when that component was retagged, its unchanged
        version when only other components were.
        """
        client = self._client()
        app = client.get_app(self.app_id.do_app_id)
        active_id = (app.get("active_deployment") or {}).get("id")
        step._update_data(active_deployment_id=active_id, live_url=app.get("live_url"))
        if active_id != self.do_deployment_id:
            # Retried until the step's limit: the switch may lag behind ACTIVE.
            raise DeployError("TRAFFIC_SWITCH_FAILED", (
                f"The app's active deployment is {active_id}, not {self.do_deployment_id}."),
                retryable=True)
        self._check_ingress(step, spec_version(self.sudo().target_spec) or self.image_tag,
                            self.do_deployment_id)
        self.app_id.live_version = self.image_tag

    def _check_ingress(self, step, version, deployment_id):
        """The ingress serves ``version``; DNS resolves; TLS is valid when https."""
        ingress = self._ingress_url()
        served = self.app_id.account_id._run_check(
            "check_served_version", ingress, version, expected_deployment_id=deployment_id)
        step._update_data(served=served.to_dict())
        served.raise_for_result()
        parts = urlsplit(ingress)
        dns = checks.check_dns(parts.hostname)
        step._update_data(dns=dns.to_dict())
        dns.raise_for_result()
        if parts.scheme == "https":
            tls = checks.check_tls(parts.hostname, port=parts.port or 443)
            step._update_data(tls=tls.to_dict())
            tls.raise_for_result()
        else:
            step._update_data(tls={"ok": True, "skipped": True,
                                   "message": "Plain http ingress: no certificate to check."})
            step._append_log("TLS check skipped: the ingress is plain http.")
        step._append_log(served.message)

    def _step_validate(self, step):
        """Step 7: the app's endpoint checks (the SOP's set when it has none), one check
        per action so that no action holds a cron thread for more than one check's
        timeout; the step fails, after the last check, with the first failure's code."""
        endpoint_checks = self.app_id._get_endpoint_checks()
        done = list((step.data or {}).get("results") or [])
        if len(done) < len(endpoint_checks):
            [result] = self.app_id.account_id._run_check(
                "check_endpoints", self._ingress_url(), [endpoint_checks[len(done)]])
            step._update_data(results=[*done, result.to_dict()])
            step._append_log(f"{'OK' if result.ok else result.code}: {result.message}")
            done.append(result.to_dict())
            if len(done) < len(endpoint_checks):
                return 0
        failed = [checks.CheckResult(**result) for result in done if not result.get("ok")]
        if failed and failed[0].code in checks.RETRYABLE_CODES:
            # Retried from the first check, as the checks may pass on a later try.
            step._update_data(results=[], last_results=done)
        for result in failed:
            result.raise_for_result()
        return None

    def _step_update_task(self, step):
        """Step 8: stage, deployment facts and a chatter message on the task.

        A deployment started without a task (the Deployments menu, the API, a
        promotion) has nothing to update: the step is skipped. One whose task was
        deleted since it was queued (``task_id`` in the step's data, see
        :meth:`_queue`) fails with TASK_NOT_FOUND.
        """
        task = self.task_id.exists()
        if not task:
            if (step.data or {}).get("task_id"):
                raise DeployError("TASK_NOT_FOUND",
                                  "The task of this deployment does not exist.")
            step._update_data(skipped=True)
            step._append_log("No task is linked to this deployment: nothing to update.")
            return None
        try:
            with self.env.cr.savepoint():
                vals = {
                    "deployed_at": fields.Datetime.now(),
                    "deployed_by": self.requested_by_id.id,
                    "deployed_version": self.image_tag,
                }
                stage = self.app_id.deployed_stage_id
                stage_note = None
                if stage and task.project_id:
                    if task.project_id in stage.project_ids:
                        vals["stage_id"] = stage.id
                    else:
                        # Adding the stage to the project would change its board for
                        # everyone: the task keeps its stage and the message says why.
                        stage_note = (
                            f"The task stays in {task.stage_id.name or 'its stage'}: "
                            f"{stage.name}, the app's deployed stage, is not a stage of "
                            f"{task.project_id.name}. Add it to the project, or choose "
                            f"one of the project's stages as the app's deployed stage.")
                task.write(vals)
                body = self._task_message()
                if stage_note:
                    body += Markup("<p>%s</p>") % stage_note
                    step._append_log(stage_note)
                task.message_post(
                    body=body,
                    author_id=self.requested_by_id.partner_id.id,
                    subtype_xmlid="mail.mt_comment",
                )
        except (UserError, ValidationError, AccessError) as error:
            raise DeployError("ODOO_API_ERROR", f"The task could not be updated: {error}") from None
        step._update_data(task_id=task.id, stage=self.app_id.deployed_stage_id.name or None)
        step._append_log(f"Task {task.display_name} updated.")

    def _task_message(self):
        return Markup(
            "<p>Deployed <b>%s</b> to <b>%s</b> (%s).</p>"
            "<ul><li>Deployment: %s (DigitalOcean %s)</li><li>Deployed by: %s</li>"
            "<li>Duration: %s s</li></ul>") % (
            self.image_tag, self.app_id.name, self.environment, self.name,
            self.do_deployment_id, self.requested_by_id.name,
            round((fields.Datetime.now() - self.start_date).total_seconds(), 1))
