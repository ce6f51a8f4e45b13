"""Deployment notifications without Odoo: what to say, to whom, and one attempt to say it.

* :mod:`.events`: a deployment event as plain data (:class:`~.events.DeploymentEvent`)
  and the SOP's routing of each event to its channels (:func:`~.events.sop_channels`);
* :mod:`.slack`: Block Kit messages for an incoming webhook (deployment events and
  KPI alerts);
* :mod:`.pagerduty`: Events API v2 trigger and resolve events for production
  rollbacks;
* :mod:`.delivery`: one bounded HTTP attempt, returning a result the caller stores
  and retries from (it never raises for the receiver's faults, never waits past its
  time budget and never shows a secret).

The Odoo side queues one delivery per channel and event, calls ``send`` of the
channel from a cron, stores each :class:`~.delivery.DeliveryResult` as an attempt on
the deployment, and tries again at ``retry_at`` until it is None.
"""
