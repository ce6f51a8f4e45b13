"""The sample deployment the Slack and PagerDuty tests notify about, and its moment and link."""

from datetime import datetime

from engine.notify.events import DeploymentEvent

LINK = "https://odoo.example.com/odoo/action-do_deploy.deployments/42"
NOW = datetime(2025, 11, 3, 9, 0)
SAMPLE = {"deployment": "DEP/2025/0042", "app": "shop", "environment": "production",
          "tag": "v1.2.3", "task": "Checkout redesign", "requested_by": "Ann Lee", "link": LINK,
          "occurred_at": NOW}


def sample_event(kind, **values):
    """The ``kind`` event of the sample deployment, ``values`` added or replaced."""
    return DeploymentEvent(kind, **{**SAMPLE, **values})
