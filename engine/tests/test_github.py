"""engine.github against a local server that answers like GitHub, and the CI verdict."""

import pytest

from engine import github
from engine.github import (
    FAILED,
    PASSED,
    PENDING,
    GitHubClient,
    GitHubError,
    evaluate_ci,
    split_repository,
)
from engine.simulator import ManualClock
from engine.tests.github_fake import TOKEN, FakeGitHub

REPO = "acme/shop"
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def clock():
    return ManualClock(1_800_000_000)


@pytest.fixture
def fake(clock):
    server = FakeGitHub(clock).start()
    server.add_commit(REPO, SHA, refs=("v1.2.3",))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(fake, clock):
    return GitHubClient(TOKEN, fake.url, clock=clock.now)


def _no_token_in(error):
    text = f"{error} {error.to_dict()} {error!r}"
    assert TOKEN not in text


# ---------------------------------------------------------------- the requests


def test_requests_carry_githubs_documented_headers_and_nothing_secret_in_the_url(fake, client):
    fake.add_status(REPO, SHA, "ci/jenkins", "success")
    client.combined_status(REPO, SHA)
    client.check_runs(REPO, SHA)
    assert [request["path"] for request in fake.requests] == [
        f"/repos/{REPO}/commits/{SHA}/status", f"/repos/{REPO}/commits/{SHA}/check-runs"]
    for request in fake.requests:
        headers = request["headers"]
        assert headers["accept"] == "application/vnd.github+json"
        assert headers["x-github-api-version"] == "2022-11-28"
        assert headers["authorization"] == f"Bearer {TOKEN}"
        assert headers["user-agent"].startswith("do_deploy")
        assert request["query"]["per_page"] == ["100"]
        assert TOKEN not in str(request["query"])
    assert fake.requests[1]["query"]["filter"] == ["latest"]
    assert "***" in repr(client._auth) and TOKEN not in repr(client._auth)


def test_combined_status_as_github_gives_it(fake, client):
    fake.add_status(REPO, SHA, "ci/jenkins", "pending")
    fake.add_status(REPO, SHA, "ci/jenkins", "success", target_url="https://ci.example.com/7")
    fake.add_status(REPO, SHA, "lint", "success")
    status = client.combined_status(REPO, SHA)
    assert status["state"] == "success"
    assert status["sha"] == SHA
    assert status["total_count"] == 2
    assert {(item["context"], item["state"]) for item in status["statuses"]} == {
        ("ci/jenkins", "success"), ("lint", "success")}


def test_a_tag_resolves_to_its_commit(fake, client):
    fake.add_check_run(REPO, SHA, "build")
    assert client.combined_status(REPO, "v1.2.3")["sha"] == SHA
    assert [run["name"] for run in client.check_runs(REPO, "v1.2.3")] == ["build"]


def test_check_runs_follow_the_link_header_over_every_page(fake, client):
    for number in range(250):
        fake.add_check_run(REPO, SHA, f"job-{number:03d}")
    runs = client.check_runs(REPO, SHA)
    assert [run["name"] for run in runs] == [f"job-{number:03d}" for number in range(250)]
    pages = [request["query"].get("page", ["1"])[0] for request in fake.requests]
    assert pages == ["1", "2", "3"]
    assert all(request["query"]["per_page"] == ["100"] for request in fake.requests)


def test_statuses_are_paged_too(fake, client):
    for number in range(130):
        fake.add_status(REPO, SHA, f"context-{number}", "success")
    status = client.combined_status(REPO, SHA)
    assert len(status["statuses"]) == 130 and status["total_count"] == 130
    assert len(fake.requests) == 2


def test_a_rerun_replaces_the_earlier_run_of_the_same_name(fake, client):
    fake.add_check_run(REPO, SHA, "build", conclusion="failure")
    fake.add_check_run(REPO, SHA, "build", conclusion="success")
    assert [run["conclusion"] for run in client.check_runs(REPO, SHA)] == ["success"]


def test_more_pages_than_allowed_is_refused(fake, client, monkeypatch):
    monkeypatch.setattr(github, "MAX_PAGES", 2)
    for number in range(201):
        fake.add_check_run(REPO, SHA, f"job-{number}")
    with pytest.raises(GitHubError) as caught:
        client.check_runs(REPO, SHA)
    assert caught.value.code == "GITHUB_UNAVAILABLE"
    assert "more than 200 check_runs" in caught.value.message


def test_a_next_link_to_another_host_is_not_followed(fake, client, clock):
    other = FakeGitHub(clock).start()
    try:
        fake.fail_next(200, {"Link": f'<{other.url}/repos/{REPO}/commits/{SHA}/check-runs'
                                     '?page=2&token=abc>; rel="next"'},
                       {"total_count": 2, "check_runs": []})
        with pytest.raises(GitHubError) as caught:
            client.check_runs(REPO, SHA)
        assert caught.value.code == "GITHUB_UNAVAILABLE"
        assert "outside its API" in caught.value.message
        assert "token=" not in str(caught.value.details)
        assert other.requests == []
    finally:
        other.stop()


# ------------------------------------------------------------------ the errors


def test_a_wrong_token_is_github_unauthorized_without_the_token(fake, clock):
    client = GitHubClient("ghp_wrongTOKEN0123456789", fake.url, clock=clock.now)
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    assert caught.value.code == "GITHUB_UNAUTHORIZED"
    assert caught.value.details["http_status"] == 401
    assert "Bad credentials" in caught.value.message
    assert "ghp_wrongTOKEN0123456789" not in f"{caught.value} {caught.value.details}"
    assert not caught.value.retryable


def test_a_token_without_the_permission_is_github_unauthorized(fake, client):
    fake.fail_next(403, {}, {"message": "Resource not accessible by personal access token",
                             "documentation_url": "https://docs.github.com/rest"})
    with pytest.raises(GitHubError) as caught:
        client.check_runs(REPO, SHA)
    assert caught.value.code == "GITHUB_UNAUTHORIZED"
    assert "Resource not accessible" in caught.value.message
    _no_token_in(caught.value)


def test_an_echoed_token_is_redacted(fake, client):
    fake.fail_next(401, {}, {"message": f"Bad credentials {TOKEN}"})
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    _no_token_in(caught.value)


@pytest.mark.parametrize("token", ["", None, "has space", "tab\tinside"])
def test_a_malformed_token_is_refused_before_any_request(token):
    with pytest.raises(GitHubError) as caught:
        GitHubClient(token, "http://127.0.0.1:9")
    assert caught.value.code == "GITHUB_UNAUTHORIZED"
    assert "has space" not in str(caught.value)


def test_an_api_url_that_is_not_http_is_refused():
    with pytest.raises(GitHubError) as caught:
        GitHubClient(TOKEN, "ftp://github.example.com")
    assert caught.value.code == "GITHUB_UNAVAILABLE"


def test_an_unknown_repository_is_404_and_an_unknown_commit_422(fake, client):
    with pytest.raises(GitHubError) as caught:
        client.combined_status("acme/unknown", SHA)
    assert (caught.value.code, caught.value.details["http_status"]) == ("CI_COMMIT_NOT_FOUND", 404)
    with pytest.raises(GitHubError) as caught:
        client.check_runs(REPO, "f" * 40)
    assert (caught.value.code, caught.value.details["http_status"]) == ("CI_COMMIT_NOT_FOUND", 422)
    assert "No commit found for SHA" in caught.value.message


@pytest.mark.parametrize("repository, ref", [
    ("no-slash", SHA), ("a/b/c", SHA), ("acme/..", SHA), (None, SHA),
    (REPO, ""), (REPO, "a..b"), (REPO, "with space"), (REPO, None),
])
def test_a_malformed_repository_or_ref_is_refused_before_any_request(fake, client, repository,
                                                                     ref):
    with pytest.raises(GitHubError) as caught:
        client.combined_status(repository, ref)
    assert caught.value.code == "CI_COMMIT_NOT_FOUND"
    assert fake.requests == []


def test_split_repository():
    assert split_repository("acme/shop.web") == ("acme", "shop.web")
    with pytest.raises(ValueError):
        split_repository("acme")


def test_a_primary_rate_limit_returns_the_reset_time_and_sends_nothing_before_it(fake, client,
                                                                                 clock):
    fake.remaining = 0
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    error = caught.value
    assert (error.code, error.retryable) == ("GITHUB_UNAVAILABLE", True)
    assert error.retry_at == int(fake.reset_at)
    assert error.details["retry_at"] == error.retry_at and error.details["sent"] is True
    assert client.rate_limit["remaining"] == 0
    sent = len(fake.requests)
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    assert caught.value.details["sent"] is False and caught.value.retry_at == error.retry_at
    assert len(fake.requests) == sent
    clock.advance(fake.reset_at - clock.now() + 1)
    fake.remaining = 10
    assert client.combined_status(REPO, SHA)["sha"] == SHA


def test_the_last_request_of_the_window_blocks_the_next_one(fake, client, clock):
    fake.remaining = 1
    client.combined_status(REPO, SHA)
    with pytest.raises(GitHubError) as caught:
        client.check_runs(REPO, SHA)
    assert caught.value.details["sent"] is False
    assert caught.value.retry_at == int(fake.reset_at)
    assert len(fake.requests) == 1


def test_a_secondary_rate_limit_with_retry_after(fake, client, clock):
    fake.fail_next(403, {"retry-after": "30"},
                   {"message": "You have exceeded a secondary rate limit. Please wait a few "
                               "minutes before you try again."})
    with pytest.raises(GitHubError) as caught:
        client.check_runs(REPO, SHA)
    assert caught.value.retry_at == clock.now() + 30
    assert "rate-limiting" in caught.value.message
    clock.advance(31)
    assert client.check_runs(REPO, SHA) == []


def test_a_secondary_rate_limit_without_retry_after_waits_a_minute_then_longer(fake, client,
                                                                              clock):
    body = {"message": "You have exceeded a secondary rate limit."}
    fake.fail_next(403, {}, body, times=2)
    waits = []
    for _ in range(2):
        with pytest.raises(GitHubError) as caught:
            client.check_runs(REPO, SHA)
        waits.append(caught.value.retry_at - clock.now())
        clock.advance(waits[-1])
    assert waits == [60.0, 120.0]
    client.check_runs(REPO, SHA)
    fake.fail_next(429, {}, {"message": "Too many requests"})
    with pytest.raises(GitHubError) as caught:
        client.check_runs(REPO, SHA)
    assert caught.value.retry_at - clock.now() == 60.0


@pytest.mark.parametrize("status, retryable", [(500, True), (502, True), (501, False),
                                               (400, False)])
def test_other_failures_are_github_unavailable(fake, client, status, retryable):
    fake.fail_next(status, {}, {"message": "Server Error"})
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    assert (caught.value.code, caught.value.retryable) == ("GITHUB_UNAVAILABLE", retryable)
    assert caught.value.retry_at is None


@pytest.mark.parametrize("body", [b"<html>unicorn</html>", [1, 2], {"state": 3, "statuses": []},
                                  {"state": "success"}])
def test_an_unreadable_answer_is_github_unavailable(fake, client, body):
    fake.fail_next(200, {}, body)
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    assert (caught.value.code, caught.value.retryable) == ("GITHUB_UNAVAILABLE", True)


def test_an_unreachable_api_is_github_unavailable(clock, closed_port):
    client = GitHubClient(TOKEN, f"http://127.0.0.1:{closed_port}", clock=clock.now,
                          connect_timeout=1.0)
    with pytest.raises(GitHubError) as caught:
        client.check_runs(REPO, SHA)
    assert (caught.value.code, caught.value.retryable) == ("GITHUB_UNAVAILABLE", True)
    assert "did not answer" in caught.value.message
    _no_token_in(caught.value)


# --------------------------------------------------------------- the verdict


def run(name, status="completed", conclusion="success", url=None):
    return {"name": name, "status": status, "conclusion": conclusion,
            "html_url": url or f"https://github.com/acme/shop/runs/{name}",
            "started_at": "2027-01-15T10:00:00Z",
            "completed_at": "2027-01-15T10:05:00Z" if status == "completed" else None}


def statuses(*pairs):
    items = [{"context": context, "state": state, "target_url": f"https://ci.example.com/{context}",
              "updated_at": "2027-01-15T10:06:00Z"} for context, state in pairs]
    return {"state": "ignored", "sha": SHA, "total_count": len(items), "statuses": items}


NO_STATUS = {"state": "pending", "sha": SHA, "total_count": 0, "statuses": []}


@pytest.mark.parametrize("runs, status, required, outcome", [
    # green words
    ([run("build"), run("lint", conclusion="neutral")], NO_STATUS, (), PASSED),
    ([run("docs", conclusion="skipped")], statuses(("ci", "success")), (), PASSED),
    # a required check that was skipped never ran
    ([run("scan", conclusion="skipped")], NO_STATUS, ("scan",), FAILED),
    # failing words, required or not
    ([run("build"), run("e2e", conclusion="failure")], NO_STATUS, (), FAILED),
    ([run("build", conclusion="cancelled")], NO_STATUS, (), FAILED),
    ([run("build", conclusion="timed_out")], NO_STATUS, (), FAILED),
    ([run("build", conclusion="stale")], NO_STATUS, (), FAILED),
    ([run("build", conclusion="startup_failure")], NO_STATUS, (), FAILED),
    ([run("build", conclusion="some_new_word")], NO_STATUS, (), FAILED),
    ([run("build")], statuses(("ci", "error")), (), FAILED),
    ([run("build")], statuses(("ci", "failure")), (), FAILED),
    # still running, waiting for a person, or not reported
    ([run("build", status="queued", conclusion=None)], NO_STATUS, (), PENDING),
    ([run("build", status="in_progress", conclusion=None)], NO_STATUS, (), PENDING),
    ([run("build", status="waiting", conclusion=None)], NO_STATUS, (), PENDING),
    ([run("build", conclusion="action_required")], NO_STATUS, (), PENDING),
    ([run("build")], statuses(("ci", "pending")), (), PENDING),
    ([run("build")], NO_STATUS, ("build", "scan"), PENDING),
    ([], NO_STATUS, (), PENDING),
    # a failure wins over anything pending or missing
    ([run("build", status="queued", conclusion=None), run("unit", conclusion="failure")],
     NO_STATUS, ("scan",), FAILED),
    # a required name may be a status context
    ([run("build")], statuses(("security/scan", "success")), ("security/scan",), PASSED),
])
def test_evaluate_ci(runs, status, required, outcome):
    assert evaluate_ci(status, runs, required=required).outcome == outcome


def test_no_status_at_all_is_not_pending_when_check_runs_passed():
    """GitHub's combined state is "pending" when a commit has no status; that alone waits
    for nothing (repositories on GitHub Actions have check runs only)."""
    report = evaluate_ci(NO_STATUS, [run("build")])
    assert report.outcome == PASSED
    assert report.summary() == "All 1 CI checks and statuses passed on GitHub."


def test_the_report_names_what_failed_with_its_link():
    report = evaluate_ci(statuses(("ci/jenkins", "success")),
                         [run("build"), run("trivy", conclusion="failure",
                                            url="https://github.com/acme/shop/runs/9")],
                         required=("build",), security=("trivy",))
    assert report.outcome == FAILED and report.security_failed
    (failed,) = report.of(FAILED)
    assert (failed.name, failed.kind, failed.link, failed.security) == (
        "trivy", "check_run", "https://github.com/acme/shop/runs/9", True)
    assert failed.when.isoformat() == "2027-01-15T10:05:00+00:00"
    assert report.summary() == "Failing on GitHub: trivy (failure)."
    data = report.to_dict()
    assert data["sha"] == SHA and data["checks"][1]["when"] == "2027-01-15T10:05:00+00:00"


def test_the_report_says_what_it_waits_for():
    report = evaluate_ci(NO_STATUS, [run("build", status="in_progress", conclusion=None)],
                         required=("build", "trivy"), security=("trivy",))
    assert report.missing == ("trivy",)
    assert not report.security_failed
    assert report.summary() == ("Waiting for GitHub CI; not reported yet: trivy; still running: "
                                "build (in_progress).")
    assert evaluate_ci(NO_STATUS, []).summary() == (
        "GitHub reports no check and no status for this commit yet.")


def test_commit_ci_reads_both_and_decides(fake, client):
    fake.add_status(REPO, SHA, "ci/jenkins", "success")
    fake.add_check_run(REPO, SHA, "build")
    fake.add_check_run(REPO, SHA, "image-scan", status="in_progress")
    report = client.commit_ci(REPO, SHA, required=("build",), security=("image-scan",))
    assert report.outcome == PENDING and report.sha == SHA
    fake.add_check_run(REPO, SHA, "image-scan", conclusion="success")
    report = client.commit_ci(REPO, SHA, required=("build",), security=("image-scan",))
    assert report.outcome == PASSED
    assert {check.name for check in report.checks} == {"ci/jenkins", "build", "image-scan"}
    assert client.request_count == 4


def test_an_error_page_that_is_not_json_and_a_garbled_retry_after(fake, client, clock):
    fake.fail_next(502, {}, b"<html>Bad gateway</html>")
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    assert caught.value.message == "GitHub's API failed (HTTP 502): Bad Gateway."
    fake.fail_next(429, {"retry-after": "soon"}, {"message": "Too many requests"})
    with pytest.raises(GitHubError) as caught:
        client.combined_status(REPO, SHA)
    assert caught.value.retry_at == clock.now() + 60
    assert repr(client) == f"<GitHubClient {fake.url}>"
