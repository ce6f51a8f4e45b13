"""GitHub's view of a commit's CI, and whether it passed: the *CI passed* gate's source.

The SOP tags images with the commit SHA, so the commit an image was built from
is known, and GitHub knows whether its checks are green. GitHub reports CI in
two ways and both count:

* commit statuses (``GET /repos/{owner}/{repo}/commits/{ref}/status``), set by
  external CI services: the latest status per ``context``;
* check runs (``GET /repos/{owner}/{repo}/commits/{ref}/check-runs``), set by
  GitHub Actions and GitHub Apps, such as an image security scan.

:class:`GitHubClient` reads both; :func:`evaluate_ci` decides, as plain data,
whether the commit passed. How each GitHub word counts:

* green: ``success``; ``neutral`` (the check ran and chose not to judge, which
  GitHub's branch protection also accepts); ``skipped`` only for a check that is
  not required - a *required* check that was skipped never ran (its scan did
  not look at this image), so it fails the gate instead of passing it as
  GitHub's own rule would;
* pending: a run that is ``queued``, ``in_progress``, ``waiting``,
  ``requested`` or ``pending``, a status ``pending``, and the conclusion
  ``action_required`` (a person must act on GitHub, after which it runs again);
* failed: every other conclusion (``failure``, ``cancelled``, ``timed_out``,
  ``stale``, ``startup_failure`` and any word GitHub adds later) and a status
  ``failure`` or ``error``.

Any failed check or status fails the commit, required or not (the SOP asks for
*all* CI checks); a required name that GitHub does not report yet, or any
pending one, leaves it pending. A commit with no check and no status at all is
pending: right after a push, CI has not reported yet.

The client never sleeps and never retries; the gate is evaluated again later.
When GitHub limits the token (primary limit: ``x-ratelimit-remaining: 0`` until
``x-ratelimit-reset``; secondary limit: ``retry-after`` seconds, else a minute,
doubling while it lasts) it raises :class:`GitHubError` with ``retry_at``, and
sends nothing before that time, as GitHub asks. The token goes only to the
API's own host, and no error text carries it.
"""

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from urllib.parse import quote, urlsplit

import requests

from .deployment import parse_time
from .do_api import TOKEN_RE
from .errors import DeployError, redact
from .rest import USER_AGENT, BearerAuth, error_reply

DEFAULT_GITHUB_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
# GitHub's largest page; a commit with more check runs than MAX_PAGES pages is refused.
PER_PAGE = 100
MAX_PAGES = 10
# GitHub: "wait for at least one minute" after a secondary limit without retry-after,
# "an exponentially increasing amount of time" while it lasts.
SECONDARY_LIMIT_WAIT = 60.0
MAX_SECONDARY_LIMIT_WAIT = 900.0

PASSED, FAILED, PENDING = "passed", "failed", "pending"
GREEN_CONCLUSIONS = frozenset({"success", "neutral"})
SKIPPED = "skipped"
PENDING_RUN_STATUSES = frozenset({"queued", "in_progress", "waiting", "requested", "pending"})
ACTION_REQUIRED = "action_required"
FAILED_STATUS_STATES = frozenset({"failure", "error"})

# owner: GitHub user or organization login; repository name: letters, digits, . _ -
_REPOSITORY_RE = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/([A-Za-z0-9._-]{1,100})$")
# A commit SHA, or a branch or tag name (GitHub resolves both).
_REF_RE = re.compile(r"^(?!.*\.\.)[A-Za-z0-9._/-]{1,255}$")


class GitHubError(DeployError):
    """A failed GitHub call; ``retry_at`` (epoch seconds) when GitHub said when to ask again."""

    def __init__(self, code, message, *, details=None, retryable=False, retry_at=None):
        details = dict(details or {})
        if retry_at is not None:
            details["retry_at"] = retry_at
        super().__init__(code, message, details=details, retryable=retryable)
        self.retry_at = retry_at


def split_repository(repository):
    """``"owner/name"`` as (owner, name); ValueError for anything else (a setting to fix)."""
    match = _REPOSITORY_RE.match(repository or "") if isinstance(repository, str) else None
    if match is None or match.group(2) in (".", ".."):
        raise ValueError(f"a GitHub repository is written owner/name, not {repository!r}")
    return match.group(1), match.group(2)


def _header_number(headers, name):
    try:
        return float(headers[name]) if headers.get(name) is not None else None
    except ValueError:
        return None


class GitHubClient:
    """GitHub REST API, the two reads the CI gate needs; one request per call, no sleeping."""

    def __init__(self, token, base_url=DEFAULT_GITHUB_API_URL, *, connect_timeout=5.0,
                 read_timeout=15.0, session=None, clock=time.time):
        """``base_url`` may be a GitHub Enterprise API root (``https://host/api/v3``);
        ``session`` (e.g. :func:`engine.urls.guarded_session` for such a host) and
        ``clock`` (epoch seconds, compared with ``x-ratelimit-reset``) are injectable."""
        if not isinstance(token, str) or not TOKEN_RE.match(token):
            # Never echo the value: a malformed token is still a secret.
            raise GitHubError("GITHUB_UNAUTHORIZED", "The GitHub token is empty or malformed.")
        parts = urlsplit(base_url or "")
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise GitHubError("GITHUB_UNAVAILABLE",
                              f"The GitHub API URL {base_url!r} is not an http(s) URL.")
        self._token = token
        self._auth = BearerAuth(token)
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.session = session or requests.Session()
        self._clock = clock
        self.rate_limit = {"limit": None, "remaining": None, "reset": None, "resource": None}
        self._blocked_until = None
        self._secondary_limits = 0
        self.request_count = 0

    def __repr__(self):
        return f"<GitHubClient {self.base_url}>"

    # ---------------------------------------------------------------- reads

    def combined_status(self, repository, ref):
        """The combined status of ``ref``: ``{"state", "sha", "total_count", "statuses"}``,
        statuses of every page (one latest status per context)."""
        path = self._commit_path(repository, ref, "status")
        first, statuses = None, []
        for body in self._pages(path, "statuses"):
            if not isinstance(body.get("state"), str):
                raise self._unreadable("has no combined state")
            first = first or body
            statuses += body["statuses"]
        return {"state": first["state"], "sha": first.get("sha"),
                "total_count": first.get("total_count", len(statuses)), "statuses": statuses}

    def check_runs(self, repository, ref):
        """The latest check run of each name for ``ref`` (GitHub's ``filter=latest``), all pages."""
        path = self._commit_path(repository, ref, "check-runs")
        runs = []
        for body in self._pages(path, "check_runs", {"filter": "latest"}):
            runs += body["check_runs"]
        return runs

    def commit_ci(self, repository, ref, required=(), security=()):
        """Read both and evaluate them (:func:`evaluate_ci`): a :class:`CiReport`."""
        status = self.combined_status(repository, ref)
        runs = self.check_runs(repository, ref)
        return evaluate_ci(status, runs, required=required, security=security)

    # ------------------------------------------------------------- plumbing

    def _commit_path(self, repository, ref, leaf):
        try:
            owner, name = split_repository(repository)
        except ValueError as exc:
            raise GitHubError("CI_COMMIT_NOT_FOUND", f"The GitHub repository setting: {exc}.")\
                from None
        if not isinstance(ref, str) or not _REF_RE.match(ref):
            raise GitHubError("CI_COMMIT_NOT_FOUND",
                              f"{ref!r} is not a commit SHA, branch or tag name.")
        return f"/repos/{owner}/{name}/commits/{quote(ref, safe='/')}/{leaf}"

    def _pages(self, path, key, params=None):
        """Yield each page's JSON object, following the Link header's ``next``."""
        url = self.base_url + path
        params = dict(params or {}, per_page=PER_PAGE)
        for _page in range(MAX_PAGES):
            response = self._get(url, params)
            body = self._json_object(response)
            if not isinstance(body.get(key), list):
                raise self._unreadable(f"has no {key!r} list")
            yield body
            url = (response.links.get("next") or {}).get("url")
            if not url:
                return
            self._check_same_api(url)
            params = None  # the next link carries the query
        raise GitHubError("GITHUB_UNAVAILABLE",
                          f"GitHub reports more than {MAX_PAGES * PER_PAGE} {key} for this commit.",
                          details={"path": path})

    def _check_same_api(self, url):
        """The token goes only to the API it was given for, whatever a Link header says."""
        if not url.startswith(self.base_url + "/"):
            raise GitHubError("GITHUB_UNAVAILABLE",
                              "GitHub's next-page link points outside its API; it is not followed.",
                              details={"url": redact(urlsplit(url)._replace(query="").geturl(),
                                                     [self._token])})

    def _get(self, url, params):
        now = self._clock()
        if self._blocked_until is not None and now < self._blocked_until:
            raise self._limited("GitHub asked to wait before the next request",
                                self._blocked_until, sent=False)
        headers = {"Accept": MEDIA_TYPE, "X-GitHub-Api-Version": API_VERSION,
                   "User-Agent": USER_AGENT}
        self.request_count += 1
        try:
            response = self.session.get(url, params=params, headers=headers, auth=self._auth,
                                        timeout=self.timeout)
        except requests.RequestException as exc:
            raise GitHubError(
                "GITHUB_UNAVAILABLE", f"GitHub's API did not answer ({type(exc).__name__}).",
                details={"reason": redact(exc, [self._token])}, retryable=True) from None
        self._track_rate_limit(response.headers)
        if response.status_code == 200:
            self._secondary_limits = 0
            return response
        raise self._status_error(response)

    def _track_rate_limit(self, headers):
        if "x-ratelimit-remaining" in headers:
            self.rate_limit = {
                "limit": _header_number(headers, "x-ratelimit-limit"),
                "remaining": _header_number(headers, "x-ratelimit-remaining"),
                "reset": _header_number(headers, "x-ratelimit-reset"),
                "resource": headers.get("x-ratelimit-resource"),
            }
            if self.rate_limit["remaining"] == 0 and self.rate_limit["reset"] is not None:
                # The last request the window allows: the next one would be refused.
                self._blocked_until = self.rate_limit["reset"]

    def _json_object(self, response):
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise self._unreadable("is not a JSON object")
        return body

    @staticmethod
    def _unreadable(problem):
        return GitHubError("GITHUB_UNAVAILABLE", f"GitHub's answer {problem}.", retryable=True)

    def _limited(self, text, retry_at, sent=True):
        self._blocked_until = retry_at
        when = datetime.fromtimestamp(retry_at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        details = dict(self.rate_limit, sent=sent)
        return GitHubError("GITHUB_UNAVAILABLE", f"{text}: ask again after {when}.",
                           details=details, retryable=True, retry_at=retry_at)

    def _rate_limit_retry_at(self, response, message):
        """When a 403/429 may be asked again, or None when it is not a rate limit."""
        now = self._clock()
        retry_after = _header_number(response.headers, "retry-after")
        if retry_after is not None:
            return now + max(retry_after, 0.0)
        reset = _header_number(response.headers, "x-ratelimit-reset")
        if _header_number(response.headers, "x-ratelimit-remaining") == 0 and reset is not None:
            return max(reset, now)
        if response.status_code == 429 or "rate limit" in message.lower():
            self._secondary_limits += 1
            wait = SECONDARY_LIMIT_WAIT * 2 ** (self._secondary_limits - 1)
            return now + min(wait, MAX_SECONDARY_LIMIT_WAIT)
        return None

    def _status_error(self, response):
        status = response.status_code
        _body, message = error_reply(response, self._token)
        details = {"http_status": status, "message": message,
                   "request_id": response.headers.get("x-github-request-id")}
        said = f": {message.rstrip('.')}." if message else "."
        if status in (403, 429):
            retry_at = self._rate_limit_retry_at(response, message)
            if retry_at is not None:
                return self._limited(f"GitHub is rate-limiting this token (HTTP {status})",
                                     retry_at)
        if status in (401, 403):
            return GitHubError("GITHUB_UNAUTHORIZED",
                               f"GitHub refused the token (HTTP {status}){said}", details=details)
        if status in (404, 422):
            return GitHubError("CI_COMMIT_NOT_FOUND",
                               f"GitHub knows no such repository or commit, or this token "
                               f"cannot see it (HTTP {status}){said}", details=details)
        return GitHubError("GITHUB_UNAVAILABLE", f"GitHub's API failed (HTTP {status}){said}",
                           details=details, retryable=status >= 500 and status != 501)


# ------------------------------------------------------------------ evaluation


@dataclass(frozen=True)
class CiCheck:
    """One check run or commit status, as the gate judges it."""

    name: str
    kind: str  # "check_run" or "status"
    outcome: str  # PASSED, FAILED or PENDING
    github_state: str  # GitHub's own word: conclusion, run status or status state
    link: str | None = None
    when: datetime | None = None
    required: bool = False
    security: bool = False

    def to_dict(self):
        return {"name": self.name, "kind": self.kind, "outcome": self.outcome,
                "github_state": self.github_state, "link": self.link,
                "when": self.when.isoformat() if self.when else None,
                "required": self.required, "security": self.security}


@dataclass(frozen=True)
class CiReport:
    """Whether a commit passed CI: ``outcome``, the checks behind it, required names missing."""

    sha: str | None
    outcome: str
    checks: tuple = ()
    missing: tuple = ()

    def of(self, outcome):
        return tuple(check for check in self.checks if check.outcome == outcome)

    @property
    def security_failed(self):
        """True when a failing check is one of the security checks (the image scan)."""
        return any(check.security for check in self.of(FAILED))

    def summary(self):
        failed, pending = self.of(FAILED), self.of(PENDING)
        if failed:
            return "Failing on GitHub: " + ", ".join(
                f"{check.name} ({check.github_state})" for check in failed) + "."
        parts = []
        if self.missing:
            parts.append("not reported yet: " + ", ".join(self.missing))
        if pending:
            parts.append("still running: " + ", ".join(
                f"{check.name} ({check.github_state})" for check in pending))
        if parts:
            return "Waiting for GitHub CI; " + "; ".join(parts) + "."
        if not self.checks:
            return "GitHub reports no check and no status for this commit yet."
        return f"All {len(self.checks)} CI checks and statuses passed on GitHub."

    def to_dict(self):
        return {"sha": self.sha, "outcome": self.outcome, "missing": list(self.missing),
                "checks": [check.to_dict() for check in self.checks]}


def _when(value):
    epoch = parse_time(value)
    return datetime.fromtimestamp(epoch, timezone.utc) if epoch is not None else None


def _run_outcome(run, required):
    status = run.get("status")
    if status != "completed":
        return PENDING, str(status or "unknown")
    conclusion = str(run.get("conclusion") or "unknown")
    if conclusion in GREEN_CONCLUSIONS or (conclusion == SKIPPED and not required):
        return PASSED, conclusion
    if conclusion == ACTION_REQUIRED:
        return PENDING, conclusion
    return FAILED, conclusion


def _status_outcome(status):
    state = str(status.get("state") or "unknown")
    if state == "success":
        return PASSED, state
    if state == "pending":
        return PENDING, state
    return FAILED, state  # failure, error, or a word GitHub may add


def evaluate_ci(combined_status, check_runs, required=(), security=()):
    """Decide whether a commit passed CI (rules in the module doc).

    ``combined_status`` and ``check_runs`` are GitHub's answers (as
    :meth:`GitHubClient.combined_status` and :meth:`GitHubClient.check_runs`
    return them); ``required`` and ``security`` are check names or status
    contexts that must be reported and green, ``security`` ones (the image
    scan) being reported apart (:attr:`CiReport.security_failed`).
    """
    security = tuple(security)
    required_names = set(required) | set(security)
    checks = []
    for run in check_runs:
        name = str(run.get("name") or "")
        outcome, word = _run_outcome(run, name in required_names)
        checks.append(CiCheck(name, "check_run", outcome, word,
                              run.get("html_url") or run.get("details_url"),
                              _when(run.get("completed_at") or run.get("started_at")),
                              name in required_names, name in security))
    for status in (combined_status or {}).get("statuses") or ():
        name = str(status.get("context") or "")
        outcome, word = _status_outcome(status)
        checks.append(CiCheck(name, "status", outcome, word, status.get("target_url"),
                              _when(status.get("updated_at") or status.get("created_at")),
                              name in required_names, name in security))
    reported = {check.name for check in checks}
    missing = tuple(name for name in (*required, *security) if name not in reported)
    missing = tuple(dict.fromkeys(missing))
    if any(check.outcome == FAILED for check in checks):
        outcome = FAILED
    elif missing or not checks or any(check.outcome == PENDING for check in checks):
        outcome = PENDING
    else:
        outcome = PASSED
    return CiReport((combined_status or {}).get("sha"), outcome, tuple(checks), missing)
