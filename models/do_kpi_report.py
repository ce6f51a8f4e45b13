from odoo import fields, models, tools
from odoo.tools import SQL

from ..engine import metrics

# Aggregates of the dashboard: each figure engine/metrics.py's Kpis is built from.
KPI_AGGREGATES = (
    "__count", "succeeded:sum", "failed:sum", "rolled_back:sum", "duration:count",
    "duration:avg", "duration_p95:max", "health_check_failures:sum",
    "health_check_consecutive:max", "with_health_failures:sum", "zero_downtime:sum",
    "downtime:sum",
)


class DoKpiReport(models.Model):
    """One row per finished deployment, with what the SOP's success metrics count.

    A view over the history (``_auto = False``), so the graph and pivot read the
    deployments themselves, whatever the period. Which deployments count and how
    is engine/metrics.py's definition: kind deploy, ended done, failed or rolled
    back, at their end (or start while they have none). Rates are kept as 100 or 0
    per row so their average is the rate in percent; ``duration_p95`` aggregates
    as PostgreSQL's nearest-rank ``percentile_disc(0.95)`` (see
    :meth:`_read_group_select`), the engine's percentile.

    Downtime: with blue-green the old version serves until the new one is live, so
    a deployment's users only meet errors when its new version, once live, fails a
    health check (step 5) or the post-deployment validation (step 7); from that
    step's start until service was restored (the end of the rollback that
    restored it, else the end of that step).
    """

    _name = "do.kpi.report"
    _description = "Deployment KPIs"
    _auto = False
    _order = "date desc"

    deployment_id = fields.Many2one("do.deployment", readonly=True)
    date = fields.Datetime(readonly=True, help="The deployment's end (its start while none).")
    app_id = fields.Many2one("do.app", readonly=True)
    environment = fields.Selection(
        [("staging", "Staging"), ("production", "Production")], readonly=True)
    project_id = fields.Many2one("project.project", readonly=True)
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    state = fields.Selection(
        [("done", "Done"), ("failed", "Failed"), ("rolled_back", "Rolled Back")], readonly=True)
    succeeded = fields.Integer(readonly=True)
    failed = fields.Integer(readonly=True)
    rolled_back = fields.Integer(readonly=True, help="A rollback was run for it.")
    success_rate = fields.Float("Success rate (%)", readonly=True, aggregator="avg")
    failure_rate = fields.Float("Failure rate (%)", readonly=True, aggregator="avg")
    rollback_rate = fields.Float("Rollback rate (%)", readonly=True, aggregator="avg")
    duration = fields.Float(
        "Mean deployment time (s)", readonly=True, aggregator="avg",
        help="Start to end of the successful deployments.")
    duration_p95 = fields.Float(
        "p95 deployment time (s)", readonly=True, aggregator="max",
        help="Nearest-rank 95th percentile of the successful deployments' times.")
    health_check_failures = fields.Integer(readonly=True, help="Failed health checks of step 5.")
    health_check_consecutive = fields.Integer(
        "Consecutive health check failures", readonly=True, aggregator="max")
    with_health_failures = fields.Integer(readonly=True)
    zero_downtime = fields.Integer(readonly=True)
    zero_downtime_rate = fields.Float("Zero downtime (%)", readonly=True, aggregator="avg")
    downtime = fields.Float("Downtime (s)", readonly=True)

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(SQL(
            """
            CREATE VIEW %(table)s AS (
                SELECT d.id,
                       d.id AS deployment_id,
                       (COALESCE(d.end_date, d.start_date)) AS date,
                       d.app_id, d.environment, d.project_id, t.partner_id, d.company_id,
                       d.state,
                       (d.state = 'done')::int AS succeeded,
                       (d.state != 'done')::int AS failed,
                       rb.flag AS rolled_back,
                       CASE WHEN d.state = 'done' THEN 100.0 ELSE 0.0 END AS success_rate,
                       CASE WHEN d.state = 'done' THEN 0.0 ELSE 100.0 END AS failure_rate,
                       100.0 * rb.flag AS rollback_rate,
                       CASE WHEN d.state = 'done' THEN d.duration END AS duration,
                       CASE WHEN d.state = 'done' THEN d.duration END AS duration_p95,
                       COALESCE(h.failures, 0) AS health_check_failures,
                       COALESCE(h.consecutive, 0) AS health_check_consecutive,
                       (COALESCE(h.failures, 0) > 0)::int AS with_health_failures,
                       (h.serving_errors_since IS NULL)::int AS zero_downtime,
                       CASE WHEN h.serving_errors_since IS NULL THEN 100.0 ELSE 0.0 END
                           AS zero_downtime_rate,
                       COALESCE(EXTRACT(EPOCH FROM
                           COALESCE(restore.end_date, h.serving_errors_until)
                           - h.serving_errors_since), 0) AS downtime
                  FROM do_deployment d
                  LEFT JOIN project_task t ON t.id = d.task_id
                  LEFT JOIN do_deployment restore
                         ON restore.id = d.rollback_id AND restore.state = 'done'
                  CROSS JOIN LATERAL (
                      SELECT (d.rollback_id IS NOT NULL OR d.state = 'rolled_back')::int AS flag
                  ) rb
                  LEFT JOIN (
                      SELECT t.deployment_id,
                             SUM(t.failures) AS failures,
                             MAX(t.consecutive) AS consecutive,
                             MIN(t.start_date) FILTER (WHERE t.serving_errors)
                                 AS serving_errors_since,
                             MAX(t.end_date) FILTER (WHERE t.serving_errors)
                                 AS serving_errors_until
                        FROM (
                            -- the rows of do_deployment_step_insight_trouble_idx
                            SELECT s.deployment_id, s.start_date, s.end_date, f.failures,
                                   CASE WHEN s.code != 'health_check' THEN 0
                                        WHEN s.state = 'failed' THEN GREATEST(COALESCE(
                                            (s.data ->> 'consecutive_failures')::int, 0),
                                            LEAST(f.failures, 1))
                                        ELSE LEAST(f.failures, 1) END AS consecutive,
                                   (s.state = 'failed' OR f.failures > 0) AS serving_errors
                              FROM do_deployment_step s
                             CROSS JOIN LATERAL (
                                 SELECT CASE WHEN s.code != 'health_check' THEN 0 ELSE (
                                            SELECT count(*)
                                              FROM jsonb_array_elements(
                                                   COALESCE(s.data -> 'checks', '[]'::jsonb)) c
                                             WHERE (c ->> 'ok')::boolean IS FALSE)
                                        END AS failures
                             ) f
                             WHERE (s.code = 'health_check' AND s.state IN ('warning', 'failed'))
                                OR (s.code = 'validate' AND s.state = 'failed')
                        ) t
                       GROUP BY t.deployment_id
                  ) h ON h.deployment_id = d.id
                 WHERE d.kind = %(deploy)s AND d.state IN %(finished)s
            )
            """,
            table=SQL.identifier(self._table), deploy=metrics.DEPLOY,
            finished=metrics.FINISHED_STATES,
        ))

    def _read_group_select(self, aggregate_spec, query):
        """``duration_p95:<any>`` is the nearest-rank 95th percentile of ``duration``."""
        if aggregate_spec.split(":")[0] == "duration_p95":
            return SQL("percentile_disc(0.95) WITHIN GROUP (ORDER BY %s)",
                       self._field_to_sql(self._table, "duration", query))
        return super()._read_group_select(aggregate_spec, query)

    def _kpis_by(self, domain, groupings):
        """{grouping: {key: Kpis}} for each grouping (a list of field names, [] for
        all), in one query: the engine's figures from SQL aggregates."""
        results = self._read_grouping_sets(domain, groupings, KPI_AGGREGATES)
        by_grouping = {}
        for grouping, rows in zip(groupings, results, strict=True):
            groups = by_grouping[tuple(grouping)] = {}
            for row in rows:
                key, values = row[:len(grouping)], row[len(grouping):]
                (count, succeeded, failed, rolled_back, timed, mean, p95, health_failures,
                 consecutive, with_failures, zero_downtime, downtime) = values
                groups[key] = metrics.Kpis(
                    deployments=count, succeeded=succeeded or 0, failed=failed or 0,
                    rolled_back=rolled_back or 0, timed=timed or 0,
                    # the ORM reads an average of no value as 0: no time without a success
                    mean_seconds=mean if timed else None, p95_seconds=p95 if timed else None,
                    health_check_failures=health_failures or 0,
                    max_consecutive_health_failures=consecutive if count else None,
                    deployments_with_health_failures=with_failures or 0,
                    zero_downtime=zero_downtime or 0, downtime_seconds=downtime or 0.0)
        return by_grouping
