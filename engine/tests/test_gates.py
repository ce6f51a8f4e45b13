"""Every quality gate passing, failing and pending, and what they decide together."""

import json
from datetime import datetime, timedelta, timezone

import pytest

from engine import gates
from engine.client import AppPlatformClient
from engine.errors import DeployError
from engine.freeze import REFUSE, EmergencyOverride, FreezeCalendar, OneOffWindow, Scope
from engine.gates import (
    FAILED,
    PASSED,
    PENDING,
    READY,
    REFUSED,
    WAITING,
    Approval,
    ApprovalPolicy,
    Binding,
    Confirmation,
    Evidence,
    GateResult,
    StagingDeployment,
    approval_refusal,
    binding_of,
    carry_since,
    check_ci,
    decide,
    evaluate_approval,
    evaluate_ci,
    evaluate_confirmations,
    evaluate_freeze,
    evaluate_image,
    evaluate_staging,
    spec_hash,
)
from engine.github import GitHubClient
from engine.github import evaluate_ci as ci_report
from engine.simulator import ManualClock
from engine.tests.common import sample_spec
from engine.tests.github_fake import TOKEN, FakeGitHub

NOW = datetime(2027, 1, 15, 10, 0, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
REPO = "acme/shop"
SHA = "89abcdef0123456789abcdef0123456789abcdef"


# ------------------------------------------------------------------- results


def test_a_result_round_trips_through_its_dict():
    result = GateResult("ci_passed", "ci_passed", FAILED, "Failing: build.", "CI_CHECKS_FAILED",
                        (Evidence("build (failure)", "https://github.com/x", "ci", NOW),),
                        NOW, NOW - HOUR, NOW + HOUR, True, {"sha": SHA})
    assert GateResult.from_dict(result.to_dict()) == result
    assert result.to_dict()["since"] == "2027-01-15T09:00:00+00:00"


@pytest.mark.parametrize("status, code", [("done", None), (FAILED, None), (PASSED, "BUILD_FAILED"),
                                          (FAILED, "NO_SUCH_CODE")])
def test_a_result_needs_a_known_status_and_a_code_exactly_when_failed(status, code):
    with pytest.raises(ValueError):
        GateResult("image_exists", "image_exists", status, "x", code)


def test_since_is_kept_while_the_status_stays():
    first = evaluate_confirmations(["flags", "docs"], [], now=NOW)
    later = NOW + HOUR
    ticked = [Confirmation("docs", "ana", later)]
    second = carry_since(evaluate_confirmations(["flags", "docs"], ticked, now=later),
                         [result.to_dict() for result in first])
    assert [(result.status, result.since) for result in second] == [(PENDING, NOW),
                                                                    (PASSED, later)]


# ---------------------------------------------------------------- the image


@pytest.fixture
def do_client(simulator, sim_token):
    return AppPlatformClient(sim_token, simulator.url, sleep=lambda _s: None, max_retries=0,
                             clock=simulator.sim.clock.now)


def test_image_gate_passes_fails_and_waits(simulator, do_client):
    simulator.sim.push_tag("odoo", "v2.0.0")
    passed = evaluate_image(do_client, "odoo", "v2.0.0", now=NOW)
    assert (passed.status, passed.evidence[0].label) == (PASSED, "odoo:v2.0.0 in the registry")
    failed = evaluate_image(do_client, "odoo", "v2.0.1", now=NOW)
    assert (failed.status, failed.code) == (FAILED, "IMAGE_TAG_MISSING")
    waiting = evaluate_image(do_client, "odoo", "v2.0.1", now=NOW, wait_for_push=True)
    assert (waiting.status, waiting.recheck_at) == (PENDING, NOW + gates.RECHECK_AFTER)
    unknown = evaluate_image(do_client, "no-such-repository", "v1", now=NOW)
    assert (unknown.status, unknown.code) == (FAILED, "IMAGE_PULL_FAILURE")


def test_image_gate_waits_while_the_registry_is_rate_limited(simulator, do_client):
    simulator.sim.set_scenario("rate-limit-burst", count=5, retry_after=1)
    result = evaluate_image(do_client, "odoo", "v2.0.0", now=NOW)
    assert result.status == PENDING and "cannot be asked now" in result.message
    assert result.recheck_at >= NOW + gates.RECHECK_AFTER


def test_image_gate_waits_until_the_time_an_error_names():
    class Limited:
        def tag_exists(self, repository, tag, registry=None):
            raise DeployError("RATE_LIMIT_EXCEEDED", "Slow down.", retryable=True,
                              details={"reset": (NOW + 10 * HOUR).timestamp()})

    result = evaluate_image(Limited(), "odoo", "v1", now=NOW)
    assert result.recheck_at == NOW + 10 * HOUR


# ------------------------------------------------------------------------ CI


@pytest.fixture
def github_fake():
    server = FakeGitHub(ManualClock(NOW.timestamp())).start()
    server.add_commit(REPO, SHA)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def gh(github_fake):
    return GitHubClient(TOKEN, github_fake.url, clock=github_fake.clock.now)


def test_ci_gate_passes_with_every_check_as_evidence(github_fake, gh):
    github_fake.add_check_run(REPO, SHA, "build")
    github_fake.add_check_run(REPO, SHA, "trivy")
    github_fake.add_status(REPO, SHA, "ci/jenkins", "success", "https://ci.example.com/1")
    result = check_ci(gh, REPO, SHA, now=NOW, required=("build",), security=("trivy",))
    assert result.status == PASSED and result.code is None
    assert {item.label for item in result.evidence} == {
        "build (success)", "trivy (success)", "ci/jenkins (success)"}
    assert result.data["sha"] == SHA


def test_ci_gate_failing_names_the_check_and_links_it(github_fake, gh):
    github_fake.add_check_run(REPO, SHA, "build")
    run_id = github_fake.add_check_run(REPO, SHA, "unit-tests", conclusion="failure")
    result = check_ci(gh, REPO, SHA, now=NOW, required=("build",))
    assert (result.status, result.code) == (FAILED, "CI_CHECKS_FAILED")
    (evidence,) = result.evidence
    assert evidence.label == "unit-tests (failure)"
    assert evidence.link == f"https://github.com/{REPO}/runs/{run_id}"
    assert evidence.when == NOW


def test_a_failing_image_scan_is_image_scan_failed(github_fake, gh):
    github_fake.add_check_run(REPO, SHA, "build", conclusion="failure")
    github_fake.add_check_run(REPO, SHA, "image-scan", conclusion="failure")
    result = check_ci(gh, REPO, SHA, now=NOW, security=("image-scan",))
    assert (result.status, result.code) == (FAILED, "IMAGE_SCAN_FAILED")


def test_a_skipped_required_scan_fails_an_optional_skip_does_not():
    report = ci_report({"statuses": []}, [
        {"name": "image-scan", "status": "completed", "conclusion": "skipped"},
        {"name": "docs", "status": "completed", "conclusion": "skipped"}], security=("image-scan",))
    result = evaluate_ci(report, now=NOW)
    assert (result.status, result.code) == (FAILED, "IMAGE_SCAN_FAILED")
    assert [item.label for item in result.evidence] == ["image-scan (skipped)"]


def test_ci_gate_waits_for_missing_or_running_checks(github_fake, gh):
    github_fake.add_check_run(REPO, SHA, "build", status="in_progress")
    result = check_ci(gh, REPO, SHA, now=NOW, security=("image-scan",))
    assert result.status == PENDING and result.recheck_at == NOW + gates.RECHECK_AFTER
    assert "not reported yet: image-scan" in result.message
    assert [item.label for item in result.evidence] == ["build (in_progress)"]


def test_ci_gate_waits_for_githubs_rate_limit_to_end(github_fake, gh):
    github_fake.remaining = 0
    github_fake.reset_at = NOW.timestamp() + 3 * 3600
    result = check_ci(gh, REPO, SHA, now=NOW)
    assert result.status == PENDING and result.data == {"error": "GITHUB_UNAVAILABLE"}
    assert result.recheck_at == NOW + 3 * HOUR


def test_ci_gate_waits_a_minute_when_github_fails(github_fake, gh):
    github_fake.fail_next(502, {}, {"message": "Server Error"})
    result = check_ci(gh, REPO, SHA, now=NOW)
    assert result.status == PENDING and result.recheck_at == NOW + gates.RECHECK_AFTER


def test_ci_gate_fails_on_a_refused_token_or_an_unknown_commit(github_fake):
    wrong = GitHubClient("ghp_notTheRightOne", github_fake.url, clock=github_fake.clock.now)
    result = check_ci(wrong, REPO, SHA, now=NOW)
    assert (result.status, result.code) == (FAILED, "GITHUB_UNAUTHORIZED")
    right = GitHubClient(TOKEN, github_fake.url, clock=github_fake.clock.now)
    result = check_ci(right, REPO, "0" * 40, now=NOW)
    assert (result.status, result.code) == (FAILED, "CI_COMMIT_NOT_FOUND")


# ------------------------------------------------------------------- staging


def staging(tag, state, hours_ago=None, name=None):
    finished = NOW - timedelta(hours=hours_ago) if hours_ago is not None else None
    return StagingDeployment(tag, state, finished, f"https://odoo.example.com/dep/{name}",
                             "ana", name)


def test_staging_gate_passes_on_a_recent_success_of_the_same_tag():
    history = [staging("v1", "succeeded", 2, "DEP-1"), staging("v2", "failed", 1, "DEP-2")]
    result = evaluate_staging(history, tag="v1", now=NOW, max_age=timedelta(days=7))
    assert result.status == PASSED
    assert result.message == "v1 was deployed successfully to staging 2.0 hours ago."
    assert result.evidence == (Evidence("DEP-1 succeeded on staging",
                                        "https://odoo.example.com/dep/DEP-1", "ana",
                                        NOW - 2 * HOUR),)
    assert evaluate_staging(history, tag="v1", now=NOW).status == PASSED


def test_staging_gate_fails_when_never_tested_too_old_or_last_failed():
    never = evaluate_staging([staging("v2", "succeeded", 1)], tag="v1", now=NOW)
    assert (never.status, never.code) == (FAILED, "NOT_TESTED_IN_STAGING")
    assert never.message == "v1 was never deployed successfully to staging."
    old = evaluate_staging([staging("v1", "succeeded", 24 * 10)], tag="v1", now=NOW,
                           max_age=timedelta(days=7))
    assert (old.status, old.code) == (FAILED, "NOT_TESTED_IN_STAGING")
    assert "10.0 days ago, longer than the 7.0 days allowed" in old.message
    broke = evaluate_staging([staging("v1", "succeeded", 5, "DEP-1"),
                              staging("v1", "failed", 1, "DEP-2")], tag="v1", now=NOW)
    assert (broke.status, broke.code) == (FAILED, "NOT_TESTED_IN_STAGING")
    assert broke.evidence[0].label == "DEP-2 failed on staging"


def test_staging_gate_waits_for_a_staging_deployment_in_progress():
    result = evaluate_staging([staging("v1", "failed", 3), staging("v1", "running", None, "DEP-9")],
                              tag="v1", now=NOW)
    assert result.status == PENDING and result.recheck_at == NOW + gates.RECHECK_AFTER
    assert result.evidence[0].label == "DEP-9 running on staging"
    with pytest.raises(ValueError):
        StagingDeployment("v1", "done")


# ------------------------------------------------------------- confirmations


def test_confirmations_one_gate_per_item():
    binding = binding_of("app-1", "v1", {"name": "a"})
    records = [Confirmation("Feature flags configured", "ana", NOW - HOUR, name="Ana Lopez",
                            comment="flag X off", binding=binding)]
    flags, migrations = evaluate_confirmations(
        ["Feature flags configured", "Migrations reviewed"], records, now=NOW, binding=binding)
    assert (flags.status, flags.name, flags.message) == (
        PASSED, "Feature flags configured", "Ana Lopez confirmed: Feature flags configured.")
    assert flags.evidence == (Evidence("Feature flags configured: flag X off", who="Ana Lopez",
                                       when=NOW - HOUR),)
    assert (migrations.status, migrations.code) == (PENDING, None)


def test_a_declined_confirmation_fails():
    records = [Confirmation("flags", "ana", NOW - 2 * HOUR),
               Confirmation("flags", "bob", NOW - HOUR, confirmed=False, comment="flag X on")]
    (result,) = evaluate_confirmations(["flags"], records, now=NOW)
    assert (result.status, result.code) == (FAILED, "CONFIRMATION_REFUSED")
    assert result.message == "bob declined: flags."
    with pytest.raises(ValueError):
        Confirmation("flags", " ", NOW)


def test_a_confirmation_for_another_tag_is_void():
    old = binding_of("app-1", "v1", {"name": "a"})
    new = binding_of("app-1", "v2", {"name": "a"})
    (result,) = evaluate_confirmations(["flags"], [Confirmation("flags", "ana", NOW, binding=old)],
                                       now=NOW, binding=new)
    assert result.status == PENDING


# -------------------------------------------------------------------- freeze


PROD = Scope(company="1", environment="production", app="shop")


def calendar(mode="wait"):
    return FreezeCalendar([OneOffWindow("Month-end close", NOW - HOUR, NOW + 5 * HOUR,
                                        scope=Scope(environment="production"), mode=mode)])


def test_freeze_gate_passes_outside_any_window_and_names_the_next():
    result = evaluate_freeze(calendar(), PROD, now=NOW - 3 * HOUR)
    assert result.status == PASSED
    assert result.data["next_freeze"]["start"] == "2027-01-15T09:00:00+00:00"
    assert evaluate_freeze(calendar(), Scope(environment="staging"), now=NOW).status == PASSED


def test_freeze_gate_waits_until_the_window_ends():
    result = evaluate_freeze(calendar(), PROD, now=NOW)
    assert result.status == PENDING and result.recheck_at == NOW + 5 * HOUR
    assert result.message == ("Frozen by Month-end close (2027-01-15 09:00 - 2027-01-15 15:00 "
                              "UTC); waiting until 2027-01-15 15:00 UTC.")


def test_a_deployment_that_would_run_into_a_freeze_waits_for_after_it():
    result = evaluate_freeze(calendar(), PROD, now=NOW - 70 * timedelta(minutes=1),
                             expected_duration=timedelta(minutes=15))
    assert result.status == PENDING and result.recheck_at == NOW + 5 * HOUR


def test_a_refusing_freeze_window_fails_the_gate():
    result = evaluate_freeze(calendar(REFUSE), PROD, now=NOW)
    assert (result.status, result.code) == (FAILED, "DEPLOY_FROZEN")
    assert result.evidence[0].label == "Freeze window Month-end close"


def test_an_emergency_override_passes_the_freeze_flagged():
    binding = binding_of("shop", "v1", {"name": "shop"})
    override = EmergencyOverride("cto", "Payment outage fix", NOW - timedelta(minutes=5), binding)
    result = evaluate_freeze(calendar(REFUSE), PROD, now=NOW, override=override, binding=binding)
    assert (result.status, result.flagged) == (PASSED, True)
    assert result.evidence == (Evidence("Emergency override: Payment outage fix", who="cto",
                                        when=NOW - timedelta(minutes=5)),)
    assert result.data["override"]["reason"] == "Payment outage fix"
    decision = decide([result], now=NOW)
    assert decision.state == READY and decision.flagged and decision.to_dict()["flagged"]


def test_an_override_for_another_tag_does_not_cover_this_one():
    given_for = binding_of("shop", "v1", {"name": "shop"})
    override = EmergencyOverride("cto", "Payment outage fix", NOW, given_for)
    result = evaluate_freeze(calendar(), PROD, now=NOW, override=override,
                             binding=binding_of("shop", "v2", {"name": "shop"}))
    assert result.status == PENDING and not result.flagged
    with pytest.raises(TypeError):
        evaluate_freeze(calendar(), PROD, now=NOW, override={"by": "cto"})


# ------------------------------------------------------------------ approval


SPEC = sample_spec("v3.1.0", name="shop")
BINDING = binding_of("shop", "v3.1.0", SPEC)
POLICY = ApprovalPolicy(approvers={"cto", "lead", "dev"}, required=2,
                        valid_for=timedelta(hours=24), expires_after=timedelta(days=3))


def approve(by, hours_ago=1, binding=BINDING, approved=True, comment=""):
    return Approval(by, NOW - timedelta(hours=hours_ago), binding, approved, comment)


def approval_gate(approvals, now=NOW, binding=BINDING, requested_hours_ago=2):
    return evaluate_approval(POLICY, approvals, requester="dev", binding=binding,
                             requested_at=NOW - timedelta(hours=requested_hours_ago), now=now)


def test_approval_passes_with_enough_approvers():
    result = approval_gate([approve("cto", comment="ok"), approve("lead", 0.5)])
    assert result.status == PASSED and result.message == "Approved by cto, lead."
    assert [item.who for item in result.evidence] == ["cto", "lead"]
    assert result.evidence[0].label == "approved: ok"
    assert result.recheck_at == NOW - HOUR + timedelta(hours=24)  # the first one expires then
    assert result.data["binding"] == BINDING.to_dict()


def test_approval_waits_for_the_missing_ones():
    result = approval_gate([approve("cto")])
    assert result.status == PENDING and result.message == "Waiting for approval: 1 of 2 approvals."
    assert result.recheck_at == NOW - 2 * HOUR + timedelta(days=3)


def test_self_approval_is_refused_and_does_not_count():
    assert approval_refusal(POLICY, "dev", "dev").startswith("You requested this deployment")
    assert approval_refusal(POLICY, "dev", "intern") == (
        "You are not one of the approvers of this deployment.")
    assert approval_refusal(POLICY, "dev", "cto") is None
    result = approval_gate([approve("cto"), approve("dev"), approve("intern")])
    assert result.status == PENDING
    assert result.data["ignored"] == ["dev", "intern"] and result.data["approved"] == ["cto"]


def test_a_rejection_fails_the_approval():
    result = approval_gate([approve("cto"), approve("lead"),
                            approve("lead", 0.5, approved=False, comment="not on a Friday")])
    assert (result.status, result.code) == (FAILED, "APPROVAL_REJECTED")
    assert result.evidence == (Evidence("rejected: not on a Friday", who="lead",
                                        when=NOW - timedelta(hours=0.5)),)


def test_a_tag_or_spec_change_voids_approvals():
    changed_tag = binding_of("shop", "v3.1.1", sample_spec("v3.1.1", name="shop"))
    bigger = sample_spec("v3.1.0", name="shop")
    bigger["services"][0]["instance_count"] = 3
    changed_spec = binding_of("shop", "v3.1.0", bigger)
    assert changed_spec.spec_hash != BINDING.spec_hash and changed_spec.tag == BINDING.tag
    for binding in (changed_tag, changed_spec):
        result = approval_gate([approve("cto"), approve("lead")], binding=binding)
        assert result.status == PENDING
        assert result.data["voided"] == ["cto", "lead"]
        assert "2 voided by a change of tag or spec" in result.message
    rejected_before = approval_gate([approve("cto", approved=False)], binding=changed_tag)
    assert rejected_before.status == PENDING  # a rejection of the old change is void too


def test_an_expired_approval_no_longer_counts():
    result = approval_gate([approve("cto", hours_ago=30), approve("lead")],
                           requested_hours_ago=31)
    assert result.status == PENDING and result.data["expired"] == ["cto"]
    assert "1 expired" in result.message


def test_an_unanswered_request_expires():
    result = approval_gate([approve("cto", hours_ago=1)], requested_hours_ago=72)
    assert (result.status, result.code) == (FAILED, "APPROVAL_EXPIRED")
    assert result.message == "The approval request expired with 1 of 2 approvals."


def test_too_few_approvers_is_said():
    policy = ApprovalPolicy(approvers={"cto", "dev"}, required=2)
    result = evaluate_approval(policy, [], requester="dev", binding=BINDING,
                               requested_at=NOW, now=NOW)
    assert result.status == PENDING and result.recheck_at is None
    assert "only 1 approver(s) other than the requester" in result.message


def test_approval_records_are_checked():
    with pytest.raises(ValueError):
        ApprovalPolicy(approvers={"cto"}, required=0)
    with pytest.raises(ValueError):
        Approval("", NOW, BINDING)
    with pytest.raises(ValueError):
        Approval("cto", NOW, {"tag": "v1"})


def test_the_spec_hash_ignores_key_order_only():
    assert spec_hash({"a": 1, "b": [1, 2]}) == spec_hash({"b": [1, 2], "a": 1})
    assert spec_hash({"a": 1, "b": [1, 2]}) != spec_hash({"a": 1, "b": [2, 1]})
    assert Binding.from_dict(BINDING.to_dict()) == BINDING


# ------------------------------------------------------------------ decision


def gate(status, name, since=NOW, recheck_at=None, code=None):
    return GateResult(name, name, status, f"{name} is {status}", code, (), NOW, since, recheck_at)


def test_all_passed_is_ready_and_no_gate_too():
    decision = decide([gate(PASSED, "a"), gate(PASSED, "b")], now=NOW)
    assert (decision.state, decision.message) == (READY, "All gates passed.")
    assert decide([], now=NOW).message == "No gate to pass."


def test_a_failed_gate_refuses_with_its_code():
    decision = decide([gate(PENDING, "ci"), gate(FAILED, "approval", code="APPROVAL_REJECTED"),
                       gate(FAILED, "staging", code="NOT_TESTED_IN_STAGING")], now=NOW)
    assert (decision.state, decision.code) == (REFUSED, "APPROVAL_REJECTED")
    assert decision.message == "Refused by approval, staging: approval is failed"
    assert [result.name for result in decision.failed] == ["approval", "staging"]


def test_pending_gates_make_it_wait_with_which_and_since_when():
    decision = decide([gate(PASSED, "image"),
                       gate(PENDING, "ci", since=NOW - HOUR, recheck_at=NOW + 60 * HOUR),
                       gate(PENDING, "approval", since=NOW - 2 * HOUR,
                            recheck_at=NOW + 2 * HOUR)], now=NOW)
    assert (decision.state, decision.message) == (WAITING, "Waiting for ci, approval.")
    assert decision.waiting_since == NOW - 2 * HOUR
    assert decision.recheck_at == NOW + 2 * HOUR
    assert [result.name for result in decision.pending] == ["ci", "approval"]
    data = decision.to_dict()
    assert data["state"] == "waiting" and data["waiting_since"] == "2027-01-15T08:00:00+00:00"
    assert [item["name"] for item in data["gates"]] == ["image", "ci", "approval"]


def test_waiting_longer_than_allowed_is_gate_timeout():
    results = [gate(PENDING, "ci", since=NOW - HOUR)]
    waiting = decide(results, now=NOW, waiting_since=NOW - 5 * HOUR, max_wait=6 * HOUR)
    assert waiting.state == WAITING and waiting.recheck_at == NOW + HOUR
    late = decide(results, now=NOW + HOUR, waiting_since=NOW - 5 * HOUR, max_wait=6 * HOUR)
    assert (late.state, late.code) == (REFUSED, "GATE_TIMEOUT")
    assert late.message == "Still waiting for ci after 6.0 hours, longer than allowed."


def test_gates_evaluated_together_for_a_production_deployment(simulator, do_client):
    """A realistic run: image pushed, CI green, staging done, flags ticked, no freeze; then
    the approval decides."""
    simulator.sim.push_tag("odoo", "v3.1.0")
    flags = [Confirmation("Feature flags configured", "ana", NOW)]
    results = [
        evaluate_image(do_client, "odoo", "v3.1.0", now=NOW),
        evaluate_ci(ci_report({"statuses": []}, [
            {"name": "build", "status": "completed", "conclusion": "success"}]), now=NOW),
        evaluate_staging([staging("v3.1.0", "succeeded", 3)], tag="v3.1.0", now=NOW),
        *evaluate_confirmations(["Feature flags configured"], flags, now=NOW),
        evaluate_freeze(FreezeCalendar(), PROD, now=NOW),
    ]
    waiting = decide([*results, approval_gate([approve("cto")])], now=NOW)
    assert waiting.state == WAITING and [r.gate for r in waiting.pending] == ["approval"]
    ready = decide([*results, approval_gate([approve("cto"), approve("lead")])], now=NOW)
    assert ready.state == READY and not ready.flagged
    assert [result.gate for result in ready.results] == list(gates.GATE_KINDS)
    stored = json.loads(json.dumps(ready.to_dict()))  # what the Odoo side keeps in a Json field
    assert [GateResult.from_dict(item) for item in stored["gates"]] == list(ready.results)
