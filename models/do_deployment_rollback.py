"""Rollback of ``do.deployment``: its steps, its end, and the incident it files.

A rollback is a ``kind=rollback`` deployment driven by the same runner; its
steps are the ``_step_rb_<code>`` handlers below. DigitalOcean pins the app
to a rollback until it is committed or reverted, so a rollback always ends
with one of them: ``rb_commit`` on success, ``rb_revert`` after any failed
step, which undoes the rollback while the app is pinned by it and follows
the deployment the revert makes.
"""

from markupsafe import Markup

from odoo import api, fields, models

from ..engine import pipeline_policy as policy
from ..engine.errors import DeployError


def _pinned_id(app):
    return (app.get("pinned_deployment") or {}).get("id")


class DoDeployment(models.Model):
    # One model over several files, one per concern (DESIGN.md), as Odoo splits account.move.
    _inherit = "do.deployment"  # pylint: disable=consider-merging-classes-inherited

    def _create_rollback(self, reason, *, state, requested_by):
        """The kind=rollback deployment that returns the app to the previous deployment."""
        self.ensure_one()
        rollback = self.create({
            "kind": "rollback",
            "task_id": self.task_id.id,
            "app_id": self.app_id.id,
            "image_tag": self.previous_version,
            "components": self.components,
            "rollback_of_id": self.id,
            "previous_do_deployment_id": self.previous_do_deployment_id,
            "previous_version": self.previous_version,
            "rollback_reason": reason,
            "requested_by_id": requested_by.id,
            "state": state,
            "queued_at": fields.Datetime.now(),
        })
        self.rollback_id = rollback
        return rollback

    # ------------------------------------------------------------------
    # Rollback steps
    # ------------------------------------------------------------------

    def _start_automatic_rollback(self, error):
        """Hand the app's slot to a rollback deployment, in the same transaction."""
        self.write({"state": "rolling_back", "next_poll_at": False, "current_step_id": False})
        self.flush_recordset()
        rollback = self._create_rollback(
            f"Automatic rollback after {error.code}", state="running",
            requested_by=self.requested_by_id)
        now = fields.Datetime.now()
        rollback.write({"start_date": now, "next_poll_at": now})
        self.message_post(body=self.env._(
            "Rolling back to the previous deployment (%(rollback)s).", rollback=rollback.name))

    def _step_rb_validate(self, step):
        """Ask DigitalOcean whether the app can return to the previous deployment."""
        client = self._client()
        app = client.get_app(self.app_id.do_app_id)
        result = client.validate_rollback(self.app_id.do_app_id, self.previous_do_deployment_id)
        step._update_data(known_deployment_ids=policy.deployment_ids_of(app),
                          valid=result["valid"], warnings=result.get("warnings") or [],
                          rollback_error=result.get("error"))
        for warning in result.get("warnings") or []:
            step._append_log(f"Warning: {warning}")
        if not result["valid"]:
            error = result.get("error") or {}
            raise DeployError("DEPLOYMENT_CREATE_FAILED", (
                f"DigitalOcean refuses the rollback: {error.get('code', 'invalid')}: "
                f"{error.get('message', '')}".strip()))
        step._append_log(f"Rollback to {self.previous_do_deployment_id} is valid.")

    def _step_rb_create(self, step):
        """Roll back (pinned), exactly once like step 3."""
        client = self._client()
        app_id = self.app_id.do_app_id
        known = self._step_by_code("rb_validate").data.get("known_deployment_ids") or []
        return self._call_once(
            step, "the rollback",
            call=lambda: client.create_rollback(app_id, self.previous_do_deployment_id)["id"],
            find=lambda app: policy.new_deployment(app, known),
            adopt=lambda deployment_id: self._store_created_deployment(step, deployment_id))

    def _step_rb_monitor(self, step):
        return self._poll_do_deployment(step)

    def _step_rb_health_check(self, step):
        """Health (one warning allowed) and the previous version served again."""
        data = step.data or {}
        if not data.get("healthy"):
            delay = self._check_health(step)
            if delay is not None:
                return delay
            step._update_data(healthy=True)
        # The version the rollback deployment serves at the ingress (its spec's first
        # image component), read when it went ACTIVE; the previous version otherwise.
        served = (self._step_by_code("rb_monitor").data or {}).get("served_version")
        if served or self.previous_version:
            self._check_ingress(step, served or self.previous_version, self.do_deployment_id)
        return None

    def _step_rb_commit(self, step):
        """Commit the rollback (unpins the app) and check the previous deployment is live.

        A commit whose reply is lost may have gone through, and the client's retry
        of it is then refused (nothing is pinned any more): after an error the app
        is read again, and only a rollback still pinned counts as not committed.
        """
        client = self._client()
        app_id = self.app_id.do_app_id
        app = client.get_app(app_id)
        if _pinned_id(app):
            try:
                client.commit_rollback(app_id)
                step._append_log("Rollback committed.")
            except DeployError as error:
                step._append_log(f"{error.code}: {error.message} Reading the app to see "
                                 "whether the commit went through.")
                if _pinned_id(client.get_app(app_id)):
                    raise
                step._append_log("It did: the app is no longer pinned.")
            app = client.get_app(app_id)
        active_id = (app.get("active_deployment") or {}).get("id")
        step._update_data(active_deployment_id=active_id, pinned=bool(_pinned_id(app)))
        if active_id != self.do_deployment_id:
            raise DeployError("TRAFFIC_SWITCH_FAILED", (
                f"After the rollback the active deployment is {active_id}, not "
                f"{self.do_deployment_id}."))
        if self.previous_version:
            self.app_id.live_version = self.previous_version
        self._step_by_code("rb_revert").write({"state": "skipped"})

    def _start_revert(self, revert):
        """A rollback step failed: run ``rb_revert`` next, the rollback stays in flight."""
        self.current_step_id = revert
        self._schedule(0)
        self.message_post(body=self.env._(
            "The rollback failed; reverting it so that the app is not left pinned."))

    def _step_rb_revert(self, step):
        """Undo a failed rollback while the app is pinned by it, then follow the revert.

        The app is read, not our records: a rollback created by a call whose reply
        was lost has no deployment id here, yet pins the app. Only a pin this
        rollback made is reverted (its deployment, or one new since rb_validate).
        The revert deploys the version from before the rollback again; it is
        followed until ACTIVE, so what serves afterwards is known.
        """
        data = step.data or {}
        if data.get("revert_deployment_id"):
            return self._poll_do_deployment(step, data["revert_deployment_id"],
                                            cancel_on_timeout=False)
        if data.get("intent_at"):
            known = data.get("known_deployment_ids") or []
        else:
            app = self._client().get_app(self.app_id.do_app_id)
            pinned = _pinned_id(app)
            before = (self._step_by_code("rb_validate").data or {}).get(
                "known_deployment_ids") or []
            ours = pinned and (pinned == self.do_deployment_id or (
                not self.do_deployment_id and pinned not in before))
            step._update_data(pinned_deployment_id=pinned)
            if not ours:
                step._append_log(
                    f"The app is pinned to {pinned}, which this rollback did not make: left as "
                    "it is." if pinned else "The app is not pinned: nothing to revert.")
                return None
            known = policy.deployment_ids_of(app)
        client = self._client()
        app_id = self.app_id.do_app_id

        def reverted(app):
            """What an earlier revert left: None while the app is still pinned."""
            if _pinned_id(app):
                return None
            return {"deployment_id": policy.new_deployment(app, known)}

        return self._call_once(
            step, "the revert", intent={"known_deployment_ids": known},
            call=lambda: {"deployment_id": client.revert_rollback(app_id)["id"]},
            find=reverted, adopt=lambda result: self._store_revert(step, result))

    def _store_revert(self, step, result):
        """Record the revert; the next action follows its deployment (None: none seen)."""
        deployment_id = result["deployment_id"]
        step._update_data(reverted=True, revert_deployment_id=deployment_id)
        if not deployment_id:
            step._append_log("Rollback reverted: the app is unpinned; DigitalOcean shows no "
                             "deployment of the revert.")
            return None
        step._append_log(f"Rollback reverted: the app is unpinned. Following deployment "
                         f"{deployment_id}, which DigitalOcean made for the revert.")
        return 0.0

    def _revert_outcome(self):
        """One plain sentence on what the revert of a failed rollback left (or None)."""
        step = self._step_by_code("rb_revert")
        data = step.data or {}
        if not step or step.state == "skipped":
            return None
        if step.state == "failed":
            return self.env._(
                "Reverting the rollback failed (%(code)s): the app may still be pinned to it. "
                "Revert it in the DigitalOcean console.", code=step.error_code_id.code)
        if data.get("revert_deployment_id"):
            deployment_id = data["revert_deployment_id"]
            version = data.get("version") or data.get("served_version") or "?"
            return self.env._(
                "Rollback reverted: the app is unpinned, and DigitalOcean redeployed the "
                "version from before the rollback, %(version)s (deployment %(deployment)s, "
                "now ACTIVE).", version=version, deployment=deployment_id)
        if data.get("reverted"):
            return self.env._("Rollback reverted: the app is unpinned.")
        if data.get("pinned_deployment_id"):
            return self.env._(
                "The app is pinned to deployment %(deployment)s, which this rollback did not "
                "make: it was left as it is.", deployment=data["pinned_deployment_id"])
        return self.env._("The app was not pinned by this rollback: nothing to revert.")

    def _finish_rollback(self):
        """Success: mark both deployments, open the incident, notify, record criteria."""
        target = self.rollback_of_id
        self._finish("done")
        if target:
            target.write({"state": "rolled_back", "end_date": target.end_date
                          or fields.Datetime.now()})
            target.message_post(body=self.env._(
                "Rolled back by %(rollback)s: %(version)s serves traffic again.",
                rollback=self.name, version=self.previous_version or "the previous version"))
        incident, notified = self._create_incident(target or self, self)
        self._record_rollback_criteria(self._step_by_code("rb_commit"), incident, notified)

    def _end_rollback(self):
        """Every step is finished: done, unless a step failed (then it was reverted)."""
        if self.step_ids.filtered(lambda s: s.state == "failed"):
            self._fail_rollback()
        else:
            self._finish_rollback()

    def _fail_rollback(self):
        """The rollback failed (and ``rb_revert`` undid it): fail both deployments and
        raise a critical incident that says what the revert left."""
        if outcome := self._revert_outcome():
            self.message_post(body=outcome)
        self._finish("failed")
        target = self.rollback_of_id
        if target.state == "rolling_back":
            target._finish("failed")
        incident, notified = self._create_incident(target or self, self, critical=True)
        failed_step = self.step_ids.filtered(lambda s: s.state == "failed")[:1]
        self._record_rollback_criteria(failed_step, incident, notified)

    def _record_rollback_criteria(self, step, incident, notified):
        """The five success criteria of the SOP's rollback procedure, as checked."""
        commit_data = self._step_by_code("rb_commit").data or {}
        health_data = self._step_by_code("rb_health_check").data or {}
        served = health_data.get("served") or {}
        criteria = {
            "previous_deployment_active": bool(self.do_deployment_id) and commit_data.get(
                "active_deployment_id") == self.do_deployment_id,
            "health_check_passed": bool(health_data.get("healthy")),
            "traffic_on_previous_version": bool(served.get("ok")) or (
                bool(health_data.get("healthy")) and not self.previous_version),
            "incident_created": bool(incident),
            "stakeholders_notified": notified,
        }
        self.rollback_criteria = criteria
        step._update_data(criteria=criteria)
        step._append_log("Rollback success criteria: " + ", ".join(
            f"{name} {'yes' if ok else 'NO'}" for name, ok in criteria.items()))

    # ------------------------------------------------------------------
    # Incidents and notifications
    # ------------------------------------------------------------------

    @api.model
    def _get_tags(self, names):
        Tag = self.env["project.tags"].sudo()
        tags = Tag.browse()
        for name in names:
            tag = Tag.search([("name", "=ilike", name)], limit=1) or Tag.create({"name": name})
            tags |= tag
        return tags

    def _create_incident(self, failed, rollback, critical=False):
        """An incident task in the app's incident project, and the people concerned
        notified in the chatter. Returns (incident task, whether anyone was notified)."""
        app = failed.app_id
        # A manual rollback has no failure of its own: the rollback's, if it failed.
        error_code = failed.error_code_id or rollback.error_code_id
        done = [f"{step.name}: {step.state}"
                + (f" ({step.error_code_id.code})" if step.error_code_id else "")
                for step in rollback.step_ids.sorted("sequence")]
        if not rollback:
            done.append(self.env._("No rollback was possible: the app had no previous "
                                   "deployment to return to."))
        elif outcome := rollback._revert_outcome():
            done.append(outcome)
        severity = "critical" if critical else (error_code.severity or "high")
        cause = Markup()
        if rollback and not failed.error_code_id:
            cause += Markup("<p><b>%s</b></p>") % self.env._(
                "Rolled back by hand by %(user)s: %(reason)s",
                user=rollback.requested_by_id.name, reason=rollback.rollback_reason or "")
        if error_code:
            cause += Markup("<p><b>Failure:</b> %s - %s</p><p><b>Message:</b> %s</p>") % (
                error_code.code, error_code.name,
                failed.error_message or rollback.error_message or "")
        if error_code.mitigation:
            cause += Markup("<p><b>Mitigation:</b> %s</p>") % error_code.mitigation
        description = cause + Markup(
            "<p><b>Severity:</b> %s</p>"
            "<p><b>What was done:</b></p><ul>%s</ul>"
            "<p>Deployment %s of %s to %s (%s); previous deployment %s (%s).</p>") % (
            severity,
            Markup("").join(Markup("<li>%s</li>") % line for line in done),
            failed.name, failed.image_tag or "", app.name, app.environment,
            failed.previous_do_deployment_id or "-", failed.previous_version or "-")
        values = {"env": app.environment, "app": app.name}
        if not rollback:
            title = self.env._("[INCIDENT] Deployment failed for %(env)s: %(app)s", **values)
        elif critical:
            title = self.env._("[INCIDENT] Rollback failed for %(env)s: %(app)s", **values)
        else:
            title = self.env._("[INCIDENT] Rollback executed for %(env)s: %(app)s", **values)
        partners = (failed.requested_by_id.partner_id | rollback.requested_by_id.partner_id
                    | failed.task_id.message_partner_ids)
        incident = self.env["project.task"]
        if app.incident_project_id:
            incident = incident.sudo().create({
                "name": title,
                "project_id": app.incident_project_id.id,
                "description": description,
                "priority": "1",
                "tag_ids": [fields.Command.set(
                    self._get_tags(["incident", "rollback", app.environment]).ids)],
            })
            incident.message_subscribe(partner_ids=partners.ids)
            incident.message_post(body=description, partner_ids=partners.ids,
                                  subtype_xmlid="mail.mt_comment")
            (failed | rollback).write({"incident_task_id": incident.id})
        summary = Markup("<p><b>%s</b></p><p>%s</p>") % (
            title, incident.display_name if incident else self.env._(
                "No incident project is set on %(app)s: no incident task.", app=app.name))
        for record in (failed.task_id or failed):
            record.message_post(body=summary + description, partner_ids=partners.ids,
                                subtype_xmlid="mail.mt_comment")
        return incident, bool(partners)
