"""A local HTTP server that answers like GitHub's REST API for the two CI reads.

Served over real loopback HTTP (``FakeGitHub().start()``, ``.url``) so the
client's headers, pagination, status codes and JSON shapes are exercised as on
the wire. What it follows from GitHub's documentation:

* ``GET /repos/{owner}/{repo}/commits/{ref}/status``: ``state`` (failure if a
  context is error or failure, pending if there is no status or one is pending,
  else success), ``statuses`` (latest per context), ``sha``, ``total_count``;
* ``GET /repos/{owner}/{repo}/commits/{ref}/check-runs``: ``total_count`` and
  ``check_runs``; ``filter=latest`` (default) keeps the newest run per name;
* ``per_page`` (default 30, at most 100) and ``page``, with a ``Link`` header
  (next, last, first, prev) of absolute URLs;
* ``x-ratelimit-*`` headers on every answer; 401 for a wrong token; 403 without
  a User-Agent; 400 for an unsupported ``X-GitHub-Api-Version``; 404 for an
  unknown repository; 422 for an unknown commit; a primary rate limit (403,
  ``x-ratelimit-remaining: 0``) once the window's requests are used up.

Every request is recorded (method, path, query, headers) for the tests to check.
"""

import itertools
import json
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from .loopback import LoopbackServer

TOKEN = "ghp_FAKEgithubTOKEN0123456789abcdefABCDEF"
SUPPORTED_VERSIONS = ("2022-11-28", "2026-03-10")
DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000


def combined_state(statuses):
    states = {status["state"] for status in statuses}
    if states & {"error", "failure"}:
        return "failure"
    if not statuses or "pending" in states:
        return "pending"
    return "success"


class FakeGitHub(LoopbackServer):
    """Repositories, commits with statuses and check runs, refs, and injected faults."""

    def __init__(self, clock):
        self.clock = clock
        self.token = TOKEN
        self.repos = {}  # "owner/name" -> {sha: {"statuses": [...], "check_runs": [...]}}
        self.refs = {}  # "owner/name" -> {branch or tag: sha}
        self.requests = []
        self.faults = []  # (status, headers, body) answered before anything else
        self.remaining = RATE_LIMIT
        self.reset_at = clock.now() + 3600
        self._ids = itertools.count(1)
        fake = self

        class Handler(_Handler):
            github = fake

        super().__init__(Handler)

    # ------------------------------------------------------------------ data

    def add_commit(self, repository, sha, refs=()):
        commits = self.repos.setdefault(repository, {})
        commits[sha] = {"statuses": [], "check_runs": []}
        for ref in refs:
            self.refs.setdefault(repository, {})[ref] = sha
        return sha

    def add_status(self, repository, sha, context, state, target_url=None):
        at = self._time()
        self.repos[repository][sha]["statuses"].append({
            "url": f"{self.url}/repos/{repository}/statuses/{sha}", "id": next(self._ids),
            "node_id": "SC_fake", "state": state, "description": f"{context}: {state}",
            "target_url": target_url, "context": context, "created_at": at, "updated_at": at,
            "avatar_url": None, "creator": {"login": "ci-bot", "id": 1},
        })

    def add_check_run(self, repository, sha, name, status="completed", conclusion="success", *,
                      html_url=None):
        run_id = next(self._ids)
        at = self._time()
        self.repos[repository][sha]["check_runs"].append({
            "id": run_id, "head_sha": sha, "node_id": "CR_fake", "external_id": "",
            "url": f"{self.url}/repos/{repository}/check-runs/{run_id}",
            "html_url": html_url or f"https://github.com/{repository}/runs/{run_id}",
            "details_url": f"https://ci.example.com/{run_id}", "status": status,
            "conclusion": conclusion if status == "completed" else None,
            "started_at": at, "completed_at": at if status == "completed" else None,
            "output": {"title": name, "summary": "", "text": None, "annotations_count": 0},
            "name": name, "check_suite": {"id": 1}, "app": {"id": 15368, "slug": "github-actions"},
            "pull_requests": [],
        })
        return run_id

    def fail_next(self, status, headers=None, body=None, times=1):
        for _ in range(times):
            self.faults.append((status, dict(headers or {}), body))

    def _time(self):
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock.now()))

    # --------------------------------------------------------------- answers

    def rate_headers(self):
        return {"x-ratelimit-limit": str(RATE_LIMIT), "x-ratelimit-remaining": str(self.remaining),
                "x-ratelimit-used": str(RATE_LIMIT - self.remaining),
                "x-ratelimit-reset": str(int(self.reset_at)), "x-ratelimit-resource": "core"}

    def answer(self, path, query, headers):
        """(status, headers, body) for one GET."""
        if self.faults:
            status, extra, body = self.faults.pop(0)
            return status, {**self.rate_headers(), **extra}, body
        if not headers.get("user-agent"):
            return 403, {}, {"message": "Request forbidden by administrative rules. Please make "
                                        "sure your request has a User-Agent header"}
        if headers.get("authorization") != f"Bearer {self.token}":
            return 401, {}, {"message": "Bad credentials", "documentation_url": DOCS,
                             "status": "401"}
        version = headers.get("x-github-api-version")
        if version is not None and version not in SUPPORTED_VERSIONS:
            return 400, {}, {"message": f"Unsupported 'X-GitHub-Api-Version' header: {version}",
                             "documentation_url": DOCS}
        if self.remaining <= 0:
            return 403, self.rate_headers(), {
                "message": "API rate limit exceeded for user ID 1. If you reach out to GitHub "
                           "Support for help, please include the request ID.",
                "documentation_url": DOCS}
        self.remaining -= 1
        parts = path.strip("/").split("/")
        if len(parts) < 6 or parts[0] != "repos" or parts[3] != "commits":
            return 404, self.rate_headers(), {"message": "Not Found", "documentation_url": DOCS}
        repository = f"{parts[1]}/{parts[2]}"
        ref, leaf = unquote("/".join(parts[4:-1])), parts[-1]
        if repository not in self.repos or leaf not in ("status", "check-runs"):
            return 404, self.rate_headers(), {"message": "Not Found", "documentation_url": DOCS}
        sha = self.refs.get(repository, {}).get(ref, ref)
        commit = self.repos[repository].get(sha)
        if commit is None:
            return 422, self.rate_headers(), {"message": f"No commit found for SHA: {ref}",
                                              "documentation_url": DOCS, "status": "422"}
        if leaf == "status":
            latest = {}
            for status in commit["statuses"]:
                latest[status["context"]] = status
            items = list(latest.values())
            key = "statuses"
            extra = {"state": combined_state(items), "sha": sha,
                     "commit_url": f"{self.url}/repos/{repository}/commits/{sha}",
                     "repository": {"full_name": repository}}
        else:
            items = commit["check_runs"]
            if query.get("filter", ["latest"])[0] == "latest":
                newest = {}
                for run in items:
                    newest[run["name"]] = run
                items = list(newest.values())
            key, extra = "check_runs", {}
        return self._page(path, query, key, items, extra)

    def _page(self, path, query, key, items, extra):
        per_page = min(int(query.get("per_page", ["30"])[0]), 100)
        page = int(query.get("page", ["1"])[0])
        last = max(1, -(-len(items) // per_page))
        body = {"total_count": len(items), key: items[(page - 1) * per_page:page * per_page],
                **extra}
        links = []

        def link(number, rel):
            params = {name: values[0] for name, values in query.items()}
            params.update(per_page=per_page, page=number)
            links.append(f'<{self.url}{path}?{urlencode(params)}>; rel="{rel}"')

        if page < last:
            link(page + 1, "next")
            link(last, "last")
        if page > 1:
            link(1, "first")
            link(page - 1, "prev")
        headers = self.rate_headers()
        if links:
            headers["Link"] = ", ".join(links)
        return 200, headers, body


class _Handler(BaseHTTPRequestHandler):
    github = None
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        headers = {name.lower(): value for name, value in self.headers.items()}
        self.github.requests.append({"method": "GET", "path": parts.path, "query": query,
                                     "headers": headers})
        status, answer_headers, body = self.github.answer(parts.path, query, headers)
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer_headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        """Quiet: the tests read ``requests`` instead."""
