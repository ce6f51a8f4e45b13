"""Setting ``do_deploy.runner_jobs`` makes that many runner jobs active at once."""

from odoo import api, models

from .do_deployment_runner import RUNNER_JOBS_PARAM


class IrConfigParameter(models.Model):
    _inherit = "ir.config_parameter"

    @api.model_create_multi
    def create(self, vals_list):
        params = super().create(vals_list)
        params._sync_runner_jobs_if_set()
        return params

    def write(self, vals):
        result = super().write(vals)
        self._sync_runner_jobs_if_set()
        return result

    def unlink(self):
        runner_jobs_set = RUNNER_JOBS_PARAM in self.mapped("key")
        result = super().unlink()
        if runner_jobs_set:
            self.env["do.deployment"]._sync_runner_jobs()
        return result

    def _sync_runner_jobs_if_set(self):
        if RUNNER_JOBS_PARAM in self.mapped("key"):
            self.env["do.deployment"]._sync_runner_jobs()
