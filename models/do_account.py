from odoo import api, fields, models
from odoo.exceptions import UserError

from ..engine.client import AppPlatformClient
from ..engine.doctl import DoctlBackend
from ..engine.errors import DeployError, redact

DEFAULT_API_URL = "https://api.digitalocean.com"
SIMULATOR_API_URL = "http://127.0.0.1:8799"


class DoAccount(models.Model):
    """A DigitalOcean account (one API token) and the backend that talks to it.

    The token is readable by Deployment Managers only; the pipeline reads it
    with sudo when it builds the engine backend and never writes it anywhere.
    """

    _name = "do.account"
    _description = "DigitalOcean Account"
    _order = "name"

    name = fields.Char(required=True)
    backend = fields.Selection(
        [("api", "REST API"), ("doctl", "doctl"), ("simulator", "Simulator")],
        required=True,
        default="api",
        help="REST API: DigitalOcean's API with requests. doctl: the doctl command line "
        "(rollbacks still use the REST API, doctl has no rollback command). Simulator: the "
        "built-in App Platform simulator, for demos and tests.",
    )
    token = fields.Char(
        groups="do_deploy.group_do_deploy_manager",
        copy=False,
        help="DigitalOcean personal access token with app:read, app:update and registry:read.",
    )
    api_url = fields.Char(
        string="API Base URL",
        help="Empty means https://api.digitalocean.com (or the local simulator for the "
        "simulator backend).",
    )
    doctl_path = fields.Char(string="doctl Path", default="doctl")
    registry_name = fields.Char(
        help="Name of the account's container registry; looked up once when empty."
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company, index=True
    )
    active = fields.Boolean(default=True)
    app_ids = fields.One2many("do.app", "account_id", string="Apps")

    @api.depends("backend")
    def _compute_display_name(self):
        labels = dict(self._fields["backend"]._description_selection(self.env))
        for account in self:
            account.display_name = f"{account.name} ({labels.get(account.backend, '')})"

    def _get_api_url(self):
        self.ensure_one()
        if self.api_url:
            return self.api_url.rstrip("/")
        return SIMULATOR_API_URL if self.backend == "simulator" else DEFAULT_API_URL

    def _get_token(self):
        """The token, read with sudo; callers never log or store it."""
        self.ensure_one()
        return self.sudo().token or ""

    def _get_backend(self):
        """The engine backend for this account (same interface for all three)."""
        self.ensure_one()
        token = self._get_token()
        if self.backend == "doctl":
            return DoctlBackend(
                token, doctl_path=self.doctl_path or "doctl", api_url=self.api_url or None
            )
        # Few, short retries: the pipeline re-polls retryable errors itself, so a
        # step action never holds a cron thread for long.
        return AppPlatformClient(
            token, base_url=self._get_api_url(), max_retries=2, backoff_cap=5.0, read_timeout=20.0
        )

    def _redact(self, text):
        """``text`` with this account's token and anything token-shaped masked."""
        return redact(text, [token for token in self.sudo().mapped("token") if token])

    def action_test_connection(self):
        """List the account's apps once, so a wrong token shows up before a deploy."""
        self.ensure_one()
        try:
            apps = self._get_backend().list_apps()
        except DeployError as error:
            raise UserError(self._redact(f"{error.code}: {error.message}")) from None
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("Connected: %(count)s app(s) visible.", count=len(apps)),
            },
        }
