import re

import psycopg2

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import config

from ..engine import checks
from ..engine.client import AppPlatformClient
from ..engine.do_api import DEFAULT_API_URL
from ..engine.doctl import DoctlBackend
from ..engine.errors import DeployError, redact
from ..engine.urls import AllowList, check_url, guarded_session

SIMULATOR_API_URL = "http://127.0.0.1:8799"
# Networks and hosts on this server's own network that the pipeline may fetch anyway
# (e.g. 127.0.0.1 for the simulator): a system parameter, which only system
# administrators read and write, and the same key in the server's configuration file.
ALLOWED_NETWORKS_PARAM = "do_deploy.allowed_networks"
ALLOWED_NETWORKS_OPTION = "do_deploy_allowed_networks"
# Settings that make the server run a program or send the token somewhere: system
# administrators only (their field groups say so too).
ADMIN_FIELDS = frozenset({"api_url", "doctl_path"})
# The checks that fetch a URL, so take the guarded session (check_dns and check_tls
# only resolve a name or shake hands with a host that was fetched first).
GUARDED_CHECKS = {
    "check_health": checks.check_health,
    "check_endpoints": checks.check_endpoints,
    "check_served_version": checks.check_served_version,
}


class DoAccount(models.Model):
    """A DigitalOcean account (one API token) and the backend that talks to it.

    The token is readable by Deployment Managers only; the pipeline reads it
    with sudo when it builds the engine backend and never writes it anywhere.
    Where the backend connects (the API URL) and which program it runs (the
    doctl path) are set by system administrators; every URL the pipeline
    fetches goes through the guard of ``engine.urls``, which refuses this
    server's own network unless ``do_deploy.allowed_networks`` allows it.
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
        groups="base.group_system",
        help="Empty means https://api.digitalocean.com (or the local simulator for the "
        "simulator backend). Set by system administrators; an address on this server's "
        "network is refused unless the system parameter do_deploy.allowed_networks "
        "allows it.",
    )
    doctl_path = fields.Char(
        string="doctl Path", default="doctl", groups="base.group_system",
        help="The doctl executable, looked up on the server's PATH when bare. Set by "
        "system administrators: the server runs it.",
    )
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

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._check_admin_fields(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._check_admin_fields(vals)
        return super().write(vals)

    @api.model
    def _check_admin_fields(self, vals):
        """The API URL and the doctl path are for system administrators.

        Their field groups already keep them out of other users' forms and
        writes; this also covers a default (``default_api_url`` in a context).
        """
        given = {name for name in ADMIN_FIELDS & set(vals) if vals[name]}
        if given and not self.env.su and not self.env.user.has_group("base.group_system"):
            raise AccessError(self.env._(
                "Only a system administrator can set %(fields)s of a DigitalOcean account: "
                "they decide which program the server runs and where it sends the token.",
                fields=", ".join(sorted(given))))

    def _get_api_url(self):
        self.ensure_one()
        api_url = self.sudo().api_url
        if api_url:
            return api_url.rstrip("/")
        return SIMULATOR_API_URL if self.backend == "simulator" else DEFAULT_API_URL

    def _get_token(self):
        """The token, read with sudo; callers never log or store it."""
        self.ensure_one()
        return self.sudo().token or ""

    def _remember_registry_name(self, name):
        """Store the registry name the backend looked up, only when it changes.

        Every deployment of the account checks its image tag in step 1; under
        load, concurrent runners all wrote the same account row and one run
        ended with PostgreSQL's serialization failure. Nothing is written when
        the name is already stored. When another transaction holds the row or
        wrote it since this one's snapshot, it is storing the name already:
        the lookup's name is used for this check and the row is left alone.
        """
        self.ensure_one()
        if not name or self.sudo().registry_name == name:
            return
        cr = self.env.cr
        try:
            with cr.savepoint(flush=False):
                cr.execute("SELECT id FROM do_account WHERE id = %s "
                           "FOR NO KEY UPDATE SKIP LOCKED", [self.id], log_exceptions=False)
                if not cr.fetchone():
                    return
                self.sudo().registry_name = name
                self.flush_recordset(["registry_name"])
        except psycopg2.extensions.TransactionRollbackError:
            self.invalidate_recordset(["registry_name"])

    @api.model
    def _allowed_networks(self):
        """The AllowList of this server's own networks and hosts the pipeline may fetch.

        Entries (networks such as ``10.0.0.0/8``, addresses, host names), separated
        by commas or spaces, come from the system parameter
        ``do_deploy.allowed_networks`` and from ``do_deploy_allowed_networks`` in the
        server's configuration file. An entry that is none of these refuses every
        fetch (URL_NOT_ALLOWED) until it is fixed: a typo must not open or close
        the list silently.
        """
        sources = (
            (ALLOWED_NETWORKS_PARAM,
             self.env["ir.config_parameter"].sudo().get_param(ALLOWED_NETWORKS_PARAM)),
            (ALLOWED_NETWORKS_OPTION, config.get(ALLOWED_NETWORKS_OPTION)),
        )
        entries = []
        for source, value in sources:
            for entry in re.split(r"[\s,]+", str(value or "")):
                if not entry:
                    continue
                try:
                    AllowList([entry])
                except ValueError:
                    raise DeployError("URL_NOT_ALLOWED", (
                        f"The entry {entry!r} of {source} is neither a network, an address "
                        "nor a host name, so nothing is fetched until a system administrator "
                        "corrects it."), details={"setting": source}) from None
                entries.append(entry)
        return AllowList(entries)

    @api.model
    def _guarded_session(self):
        """A requests session that refuses this server's own network unless allowed.

        Give each use its own session (the client's API calls and its log
        downloads must not share one) and close it after use.
        """
        return guarded_session(self._allowed_networks())

    @api.model
    def _run_check(self, name, *args, **kwargs):
        """Run the engine check ``name`` (``check_health``, ``check_endpoints`` or
        ``check_served_version``) through a guarded session.

        An ingress or endpoint on this server's own network then fails the check
        with URL_NOT_ALLOWED instead of being fetched. A malformed allow-list
        raises that DeployError before anything is fetched.
        """
        check = GUARDED_CHECKS.get(name)
        if check is None:
            raise ValueError(f"{name!r} is not a check that fetches a URL")
        with self._guarded_session() as session:
            return check(*args, session=session, **kwargs)

    def _get_backend(self):
        """The engine backend for this account (same interface for all three).

        Every connection of the REST client (API calls, log downloads) is guarded;
        doctl connects by itself, so its API URL is checked before it runs.
        """
        self.ensure_one()
        token = self._get_token()
        api_url = self._get_api_url()
        allowed = self._allowed_networks()
        # No retry inside a call: the pipeline re-polls retryable errors (a 429, a 5xx,
        # the token's call budget spent) as a scheduled next poll, so a step action
        # never sleeps on a cron thread. Every request, and every doctl run, takes from
        # the token's budget.
        budget_guard = self.env["do.call.budget"]._guard(token)
        rest_client = AppPlatformClient(
            token, base_url=api_url, max_retries=0, read_timeout=20.0,
            session=guarded_session(allowed), log_session=guarded_session(allowed),
            before_request=budget_guard,
        )
        if self.backend == "doctl":
            check_url(api_url, allowed=allowed)
            return DoctlBackend(token, doctl_path=self.sudo().doctl_path or "doctl",
                                api_url=self.sudo().api_url or None, rest_client=rest_client,
                                max_retries=0, before_request=budget_guard)
        return rest_client

    def _redact(self, text):
        """``text`` with this account's token and anything token-shaped masked."""
        return redact(text, [token for token in self.sudo().mapped("token") if token])

    def action_test_connection(self):
        """List the account's apps once, so a wrong token shows up before a deploy.

        It sends the token, so it is a Deployment Manager's button, as the token is.
        """
        self.ensure_one()
        if not self.env.su and not self.env.user.has_group("do_deploy.group_do_deploy_manager"):
            raise AccessError(self.env._(
                "Only a Deployment Manager can test the connection of a DigitalOcean account."))
        try:
            apps = self._get_backend().list_apps()
        except DeployError as error:
            raise UserError(self._redact(
                f"{error.code}: {error.message} {error.entry.mitigation}")) from None
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._("Connected: %(count)s app(s) visible.", count=len(apps)),
            },
        }
