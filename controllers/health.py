"""``GET /api/v1/health``: the deployed side of the procedure's steps 5 and 7.

Odoo's own ``/web/health`` answers ``{"status": "pass"}`` whenever the HTTP
worker runs, without touching a database (``?db_server_status=1`` only
connects to PostgreSQL's ``postgres`` database). This route checks what a
deployment needs to know: that the database this server serves answers a
query, and which version runs, so step 6 can see the new version is live.

It needs no authentication and shows no database name, host or user. It
answers 200 when the database answers and 503 otherwise. When PostgreSQL is
down Odoo cannot load the database's registry and serves the request
"without a database"; the route then still answers (with 503) only if the
addon is loaded server-wide (``--load=base,rpc,web,do_deploy``), as the
README explains; otherwise Odoo answers its own 404 page.
"""

import logging
import os
from contextlib import closing

import psycopg2

from odoo import http, sql_db
from odoo.http import request
from odoo.tools import config

from ..models.do_deployment import VERSION_ENV
from .common import ALL_METHODS, METHOD_NOT_ALLOWED, error_response, json_response

_logger = logging.getLogger(__name__)

DEPLOYMENT_ID_ENV = "DO_DEPLOY_DEPLOYMENT_ID"


class DoDeployHealth(http.Controller):
    @http.route("/api/v1/health", type="http", auth="none", methods=ALL_METHODS, csrf=False,
                save_session=False, readonly=True)
    def health(self):
        if request.httprequest.method not in ("GET", "HEAD"):
            return error_response(405, METHOD_NOT_ALLOWED, "Use GET on this URL.",
                                  headers={"Allow": "GET, HEAD"})
        version = os.environ.get(VERSION_ENV) or "unknown"
        served, answers = self._database_state()
        healthy = served and answers
        body = {
            "status": "ok" if healthy else "error",
            "database": "connected" if answers else "unreachable",
            "version": version,
        }
        headers = {"X-Deployment-ID": os.environ.get(DEPLOYMENT_ID_ENV) or version}
        return json_response(body, 200 if healthy else 503, headers)

    def _database_state(self):
        """Return (served, answers): Odoo serves its database, and the database answers."""
        if request.db:
            try:
                request.env.cr.execute("SELECT 1")
            except psycopg2.Error:
                return True, False
            return True, True
        dbname = self._expected_database()
        if not dbname:
            return False, False
        try:
            with closing(sql_db.db_connect(dbname).cursor()) as cr:
                cr.execute("SELECT 1")
        except psycopg2.Error as error:
            _logger.warning("Health check: database unreachable (%s)", type(error).__name__)
            return False, False
        return False, True

    def _expected_database(self):
        """The database this server is meant to serve when Odoo could not select it.

        That is the one database of ``--database``, else the one the request
        names in ``X-Odoo-Database`` if ``--db-filter`` lets Odoo select it:
        the route tries no database that Odoo itself would not serve.
        """
        configured = config["db_name"]
        if len(configured) == 1:
            return configured[0]
        header = request.httprequest.headers.get("X-Odoo-Database")
        if header and http.db_filter([header]):
            return header
        return None
