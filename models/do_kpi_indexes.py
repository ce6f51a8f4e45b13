from odoo import models

# Where the SOP counts a deployment: at its end, or its start while it has none.
COUNTED_AT = "COALESCE(end_date, start_date)"


class DoDeployment(models.Model):
    """Indexes for operations insight: the dashboard, the stage benchmark report and
    DORA select deployments by the time they count at (engine/metrics.py), and DORA
    each app's last change before a period; without them every screen reads the
    whole history (100,000 deployments) to show a month of it."""

    _inherit = "do.deployment"  # pylint: disable=consider-merging-classes-inherited

    _insight_counted_at_idx = models.Index(f"(({COUNTED_AT})) WHERE kind = 'deploy'")
    _insight_app_counted_at_idx = models.Index(
        f"(app_id, ({COUNTED_AT})) WHERE kind = 'deploy' AND environment = 'production'")


class DoDeploymentStep(models.Model):
    """The steps where a deployment's live version served errors (a failed health check
    warns or fails step 5; step 7 failed): the only step rows the KPIs read, a few in a
    hundred."""

    _inherit = "do.deployment.step"  # pylint: disable=consider-merging-classes-inherited

    _insight_trouble_idx = models.Index(
        "(deployment_id) WHERE (code = 'health_check' AND state IN ('warning', 'failed')) "
        "OR (code = 'validate' AND state = 'failed')")
