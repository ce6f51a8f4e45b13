"""Any other URL under ``/api/v1/`` answers a JSON 404, not Odoo's HTML page."""

from odoo import http

from .common import ALL_METHODS, NOT_FOUND, error_response


class DoDeployApiFallback(http.Controller):
    @http.route("/api/v1/<path:path>", type="http", auth="none", methods=ALL_METHODS,
                csrf=False, save_session=False, readonly=True)
    def not_found(self, path):
        return error_response(404, NOT_FOUND, f"There is no API endpoint /api/v1/{path}.")
