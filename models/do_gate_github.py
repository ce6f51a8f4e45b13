from odoo import fields, models

from ..engine.errors import redact
from ..engine.github import DEFAULT_GITHUB_API_URL, GitHubClient


class DoAccount(models.Model):
    """The GitHub token the *CI passed* gate reads commits with, kept as the DigitalOcean
    token is: readable by Deployment Managers only, read with sudo, never logged."""

    _inherit = "do.account"

    github_token = fields.Char(
        string="GitHub Token", groups="do_deploy.group_do_deploy_manager", copy=False,
        help="A GitHub token that can read commit statuses and check runs of the apps' "
             "repositories (fine-grained: Commit statuses and Checks, read-only).")
    github_api_url = fields.Char(
        string="GitHub API URL", default=DEFAULT_GITHUB_API_URL, groups="base.group_system",
        help="https://api.github.com, or a GitHub Enterprise API root (https://host/api/v3).")

    def _github_client(self, session):
        """A GitHub client with this account's token over ``session`` (a guarded one: a
        GitHub Enterprise host on this server's own network must be allowed first)."""
        self.ensure_one()
        account = self.sudo()
        return GitHubClient(account.github_token or "",
                            account.github_api_url or DEFAULT_GITHUB_API_URL, session=session)

    def _redact(self, text):
        """The GitHub token is masked as the DigitalOcean one is."""
        return redact(super()._redact(text), list(filter(None, self.sudo().mapped("github_token"))))
