"""The SOP's quality gates as plain data: each gate's result, and what they decide together.

SOP-DEPLOY-001 lists quality gates before any deployment: all CI checks passed,
image security scan clean, migrations tested in staging, feature flags
configured, change-control approval for production. Here each becomes a gate
that a deployment checks, waits on and records, evaluated from plain data so
that the rules are tested without Odoo:

* :func:`evaluate_image` - the image tag is in the registry;
* :func:`evaluate_ci` / :func:`check_ci` - GitHub reports the commit's checks
  green (:mod:`.github`), the named security scan among them;
* :func:`evaluate_staging` - the same tag was deployed successfully to the
  app's staging counterpart, recently enough;
* :func:`evaluate_confirmations` - items such as "feature flags configured",
  each ticked by a named person;
* :func:`evaluate_freeze` - no freeze window (:mod:`.freeze`) is in force, or a
  manager's emergency override lets this deployment through, flagged;
* :func:`evaluate_approval` - N approvals from the approvers, never the
  requester's own, bound to app + tag + spec hash, within their expiry.

Each returns a :class:`GateResult` (passed / failed / pending, a sentence,
evidence: link, who, when, and an error code from the catalogue when failed);
:func:`decide` combines them: all passed, the deployment may start; one failed,
it is refused with that gate's code; otherwise it waits, for those gates, since
a given time, and :attr:`GateDecision.recheck_at` says when asking again may
change the answer. ``now`` is always given by the caller.
"""

import hashlib
import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from .error_catalogue import ERROR_CODES
from .errors import DeployError
from .freeze import REFUSE, EmergencyOverride, as_utc, check_signed
from .github import FAILED, PASSED, PENDING, GitHubError

# Gate kinds, in the order the SOP lists its quality gates (the image check first).
IMAGE_EXISTS = "image_exists"
CI_PASSED = "ci_passed"
TESTED_IN_STAGING = "tested_in_staging"
CONFIRMATION = "confirmation"
FREEZE = "freeze"
APPROVAL = "approval"
GATE_KINDS = (IMAGE_EXISTS, CI_PASSED, TESTED_IN_STAGING, CONFIRMATION, FREEZE, APPROVAL)
STATUSES = (PASSED, PENDING, FAILED)
# What the gates decide together.
READY, WAITING, REFUSED = "ready", "waiting", "refused"
# A pending gate with nothing better to go by is asked again after this long: one
# evaluation is two GitHub requests or one registry listing.
RECHECK_AFTER = timedelta(minutes=1)
# The states of a staging deployment that :func:`evaluate_staging` knows.
SUCCEEDED, RUNNING = "succeeded", "running"
STAGING_STATES = (SUCCEEDED, FAILED, RUNNING)


def _iso(moment):
    return moment.isoformat() if moment is not None else None


def _parse(value):
    return as_utc(datetime.fromisoformat(value)) if value else None


@dataclass(frozen=True)
class Evidence:
    """What a gate's status rests on: a label, and where known a link, who and when."""

    label: str
    link: str | None = None
    who: str | None = None
    when: datetime | None = None

    def to_dict(self):
        return {"label": self.label, "link": self.link, "who": self.who,
                "when": _iso(self.when)}

    @classmethod
    def from_dict(cls, data):
        return cls(data["label"], data.get("link"), data.get("who"), _parse(data.get("when")))


@dataclass(frozen=True)
class GateResult:
    """One gate's evaluation.

    ``name`` tells apart gates of one kind on a deployment (each confirmation
    item is its own gate). ``since`` is when the gate got this status (see
    :func:`carry_since`); ``recheck_at`` when evaluating again may change it;
    ``flagged`` marks a result that an emergency override decided.
    """

    gate: str
    name: str
    status: str
    message: str
    code: str | None = None
    evidence: tuple = ()
    checked_at: datetime | None = None
    since: datetime | None = None
    recheck_at: datetime | None = None
    flagged: bool = False
    data: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.status not in STATUSES:
            raise ValueError(f"a gate status is one of {', '.join(STATUSES)}, "
                             f"not {self.status!r}")
        if (self.status == FAILED) != (self.code is not None):
            raise ValueError("a failed gate has an error code, and only a failed one")
        if self.code is not None and self.code not in ERROR_CODES:
            raise ValueError(f"unknown error code {self.code!r}")

    def to_dict(self):
        return {"gate": self.gate, "name": self.name, "status": self.status,
                "message": self.message, "code": self.code,
                "evidence": [item.to_dict() for item in self.evidence],
                "checked_at": _iso(self.checked_at), "since": _iso(self.since),
                "recheck_at": _iso(self.recheck_at), "flagged": self.flagged,
                "data": self.data}

    @classmethod
    def from_dict(cls, data):
        return cls(data["gate"], data["name"], data["status"], data["message"], data.get("code"),
                   tuple(Evidence.from_dict(item) for item in data.get("evidence") or ()),
                   _parse(data.get("checked_at")), _parse(data.get("since")),
                   _parse(data.get("recheck_at")), bool(data.get("flagged")),
                   dict(data.get("data") or {}))


def _result(gate, status, message, now, *, name=None, code=None, evidence=(), recheck_at=None,
            flagged=False, data=None):
    now = as_utc(now)
    return GateResult(gate, name or gate, status, message, code, tuple(evidence), now, now,
                      recheck_at, flagged, data or {})


def carry_since(results, previous):
    """``results`` with ``since`` kept from ``previous`` (the last evaluation, as results or
    their dicts) for each gate whose status did not change, so "pending since" stays true."""
    before = {}
    for item in previous or ():
        old = GateResult.from_dict(item) if isinstance(item, dict) else item
        before[(old.gate, old.name)] = old
    carried = []
    for result in results:
        old = before.get((result.gate, result.name))
        kept = old is not None and old.status == result.status and old.since is not None
        carried.append(replace(result, since=old.since) if kept else result)
    return tuple(carried)


# ------------------------------------------------------------------ binding


@dataclass(frozen=True)
class Binding:
    """What a decision was made about: app, image tag and the exact spec (its hash)."""

    app: str
    tag: str
    spec_hash: str

    def to_dict(self):
        return {"app": self.app, "tag": self.tag, "spec_hash": self.spec_hash}

    @classmethod
    def from_dict(cls, data):
        return cls(data["app"], data["tag"], data["spec_hash"])


def spec_hash(spec):
    """SHA-256 of the spec's canonical JSON: equal for equal specs, whatever the key order."""
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def binding_of(app, tag, spec):
    """The :class:`Binding` of deploying ``tag`` with ``spec`` (the target spec) to ``app``."""
    return Binding(str(app), str(tag), spec_hash(spec))


# ------------------------------------------------------------------- image


def _recheck_of(error, now):
    """When to ask again after a retryable error: the time it names, else RECHECK_AFTER."""
    epoch = getattr(error, "retry_at", None) or error.details.get("reset")
    later = now + RECHECK_AFTER
    if isinstance(epoch, (int, float)):
        return max(datetime.fromtimestamp(epoch, timezone.utc), later)
    return later


def evaluate_image(client, repository, tag, *, now, registry=None, wait_for_push=False):
    """The *image exists* gate, through ``client.tag_exists`` (REST client or doctl).

    A tag not (yet) in the registry fails with IMAGE_TAG_MISSING, or with
    ``wait_for_push`` (a CI trigger may come before its image is pushed) waits
    for it. A registry that cannot be asked now (rate limit, outage) is pending.
    """
    now = as_utc(now)
    image = f"{repository}:{tag}"
    try:
        exists = client.tag_exists(repository, tag, registry=registry)
    except DeployError as error:
        if error.retryable:
            return _result(IMAGE_EXISTS, PENDING, f"The registry cannot be asked now: "
                           f"{error.message}", now, recheck_at=_recheck_of(error, now))
        return _result(IMAGE_EXISTS, FAILED, error.message, now, code=error.code)
    if exists:
        return _result(IMAGE_EXISTS, PASSED, f"{image} is in the registry.", now,
                       evidence=[Evidence(f"{image} in the registry", when=now)])
    if wait_for_push:
        return _result(IMAGE_EXISTS, PENDING, f"Waiting for {image} to be pushed to the registry.",
                       now, recheck_at=now + RECHECK_AFTER)
    return _result(IMAGE_EXISTS, FAILED, f"{image} is not in the registry.", now,
                   code="IMAGE_TAG_MISSING")


# ---------------------------------------------------------------------- CI


def _check_evidence(checks):
    return [Evidence(f"{check.name} ({check.github_state})", check.link, when=check.when)
            for check in checks]


def evaluate_ci(report, *, now):
    """The *CI passed* gate from a :class:`~engine.github.CiReport`.

    A failing security check (the image scan) fails with IMAGE_SCAN_FAILED, any
    other failure with CI_CHECKS_FAILED; evidence links each failing check.
    """
    now = as_utc(now)
    data = report.to_dict()
    if report.outcome == FAILED:
        failed = report.of(FAILED)
        code = "IMAGE_SCAN_FAILED" if report.security_failed else "CI_CHECKS_FAILED"
        return _result(CI_PASSED, FAILED, report.summary(), now, code=code,
                       evidence=_check_evidence(failed), data=data)
    if report.outcome == PENDING:
        return _result(CI_PASSED, PENDING, report.summary(), now,
                       evidence=_check_evidence(report.of(PENDING)),
                       recheck_at=now + RECHECK_AFTER, data=data)
    return _result(CI_PASSED, PASSED, report.summary(), now,
                   evidence=_check_evidence(report.checks), data=data)


def check_ci(client, repository, ref, *, now, required=(), security=()):
    """Ask GitHub (a :class:`~engine.github.GitHubClient`) and evaluate the *CI passed* gate.

    ``ref`` is the commit the image was built from (the SOP's image tag is its
    SHA). GitHub failing to answer, or limiting the token, leaves the gate
    pending until the time GitHub gave; a refused token or an unknown commit
    fails it with that code.
    """
    now = as_utc(now)
    try:
        report = client.commit_ci(repository, ref, required=required, security=security)
    except GitHubError as error:
        if error.retryable:
            return _result(CI_PASSED, PENDING, error.message, now,
                           recheck_at=_recheck_of(error, now), data={"error": error.code})
        return _result(CI_PASSED, FAILED, error.message, now, code=error.code)
    return evaluate_ci(report, now=now)


# ----------------------------------------------------------------- staging


@dataclass(frozen=True)
class StagingDeployment:
    """A deployment of the staging counterpart, as far as this gate cares."""

    tag: str
    state: str  # SUCCEEDED, FAILED or RUNNING
    finished_at: datetime | None = None
    link: str | None = None
    who: str | None = None
    name: str | None = None

    def __post_init__(self):
        if self.state not in STAGING_STATES:
            raise ValueError(f"a staging deployment is {', '.join(STAGING_STATES)}, "
                             f"not {self.state!r}")
        if self.finished_at is not None:
            object.__setattr__(self, "finished_at", as_utc(self.finished_at))


def _age_text(age):
    hours = age.total_seconds() / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} hours"


def evaluate_staging(deployments, *, tag, now, max_age=None):
    """The *tested in staging* gate: the newest finished staging deployment of ``tag``
    succeeded, at most ``max_age`` ago (None: any age).

    The newest one decides, so a tag whose last staging run failed (a migration
    broke) is not let through on an older success. One still running makes the
    gate wait for its outcome; otherwise NOT_TESTED_IN_STAGING.
    """
    now = as_utc(now)
    same_tag = [item for item in deployments if item.tag == tag]
    finished = sorted((item for item in same_tag if item.state != RUNNING and item.finished_at),
                      key=lambda item: item.finished_at)
    latest = finished[-1] if finished else None
    if latest is not None and latest.state == SUCCEEDED:
        age = now - latest.finished_at
        evidence = [Evidence(f"{latest.name or tag} succeeded on staging", latest.link,
                             latest.who, latest.finished_at)]
        if max_age is None or age <= max_age:
            return _result(TESTED_IN_STAGING, PASSED,
                           f"{tag} was deployed successfully to staging {_age_text(age)} ago.",
                           now, evidence=evidence)
        problem = (f"{tag} was last deployed successfully to staging {_age_text(age)} ago, "
                   f"longer than the {_age_text(max_age)} allowed.")
    elif latest is not None:
        evidence = [Evidence(f"{latest.name or tag} failed on staging", latest.link, latest.who,
                             latest.finished_at)]
        problem = f"The last staging deployment of {tag} failed."
    else:
        evidence = []
        problem = f"{tag} was never deployed successfully to staging."
    running = [item for item in same_tag if item.state == RUNNING]
    if running:
        return _result(TESTED_IN_STAGING, PENDING,
                       f"{problem} Waiting for its staging deployment in progress.", now,
                       evidence=[Evidence(f"{item.name or tag} running on staging", item.link,
                                          item.who) for item in running],
                       recheck_at=now + RECHECK_AFTER)
    return _result(TESTED_IN_STAGING, FAILED, problem, now, code="NOT_TESTED_IN_STAGING",
                   evidence=evidence)


# ----------------------------------------------------------- confirmations


@dataclass(frozen=True)
class Confirmation:
    """A person ticking (``confirmed``) or declining a confirmation item."""

    item: str
    by: str
    at: datetime
    confirmed: bool = True
    comment: str = ""
    binding: Binding | None = None
    name: str | None = None  # how to show ``by``

    def __post_init__(self):
        check_signed(self, "a confirmation names the person who gave it")


def evaluate_confirmations(items, confirmations, *, now, binding=None):
    """One gate per item (its ``name`` is the item): confirmed, declined or not yet.

    The newest decision on an item counts. A confirmation bound to another
    binding (the tag or spec changed since) is void.
    """
    now = as_utc(now)
    latest = {}
    for record in sorted(confirmations, key=lambda record: record.at):
        if record.binding is None or record.binding == binding:
            latest[record.item] = record
    results = []
    for item in items:
        record = latest.get(item)
        if record is None:
            results.append(_result(CONFIRMATION, PENDING, f"Waiting for someone to confirm: "
                                   f"{item}.", now, name=item))
            continue
        who = record.name or record.by
        evidence = [Evidence(f"{item}: {record.comment}" if record.comment else item,
                             who=who, when=record.at)]
        if record.confirmed:
            results.append(_result(CONFIRMATION, PASSED, f"{who} confirmed: {item}.", now,
                                   name=item, evidence=evidence))
        else:
            results.append(_result(CONFIRMATION, FAILED, f"{who} declined: {item}.", now,
                                   name=item, code="CONFIRMATION_REFUSED", evidence=evidence))
    return tuple(results)


# ------------------------------------------------------------------ freeze


def _period_text(freeze):
    return (f"{freeze.name} ({freeze.start:%Y-%m-%d %H:%M} - {freeze.end:%Y-%m-%d %H:%M} UTC)")


def evaluate_freeze(calendar, scope, *, now, expected_duration=timedelta(0), override=None,
                    binding=None):
    """The *freeze window* gate for a deployment of ``scope`` (:class:`~engine.freeze.Scope`)
    starting ``now`` and lasting about ``expected_duration`` (it must not run into a freeze).

    An :class:`~engine.freeze.EmergencyOverride` bound to this ``binding`` (or to
    none) passes it, flagged. Otherwise a window in ``refuse`` mode fails it with
    DEPLOY_FROZEN, and ``wait`` ones keep it pending until the first moment the
    deployment fits (``recheck_at``).
    """
    now = as_utc(now)
    freezes = calendar.freezes(now, now + max(expected_duration, timedelta(microseconds=1)),
                               scope)
    if not freezes:
        upcoming = calendar.next_freeze(now, scope)
        data = {"next_freeze": upcoming.to_dict() if upcoming else None}
        return _result(FREEZE, PASSED, "No freeze window is in force.", now, data=data)
    data = {"freezes": [freeze.to_dict() for freeze in freezes]}
    names = ", ".join(_period_text(freeze) for freeze in freezes)
    if override is not None:
        if not isinstance(override, EmergencyOverride):
            raise TypeError("override must be an EmergencyOverride")
        if override.binding is None or override.binding == binding:
            data["override"] = override.to_dict()
            return _result(FREEZE, PASSED, f"Emergency override by {override.by} during {names}: "
                           f"{override.reason}", now, flagged=True, data=data,
                           evidence=[Evidence(f"Emergency override: {override.reason}",
                                              who=override.by, when=override.at)])
    evidence = [Evidence(f"Freeze window {freeze.name}", when=freeze.start) for freeze in freezes]
    if any(freeze.mode == REFUSE for freeze in freezes):
        return _result(FREEZE, FAILED, f"Deployments are refused during {names}.", now,
                       code="DEPLOY_FROZEN", evidence=evidence, data=data)
    until = calendar.next_unfrozen(now, scope, expected_duration)
    data["until"] = _iso(until)
    when = f"until {until:%Y-%m-%d %H:%M} UTC" if until else "with no end within a year"
    return _result(FREEZE, PENDING, f"Frozen by {names}; waiting {when}.", now,
                   evidence=evidence, recheck_at=until, data=data)


# ---------------------------------------------------------------- approval


@dataclass(frozen=True)
class ApprovalPolicy:
    """``required`` approvals from ``approvers``; an approval counts ``valid_for`` after it
    is given, and a request with no decision fails ``expires_after`` after it was made
    (None: never)."""

    approvers: frozenset
    required: int = 1
    valid_for: timedelta | None = None
    expires_after: timedelta | None = None

    def __post_init__(self):
        object.__setattr__(self, "approvers", frozenset(self.approvers))
        if not isinstance(self.required, int) or self.required < 1:
            raise ValueError("an approval policy requires at least one approval")


@dataclass(frozen=True)
class Approval:
    """One approver's decision (``approved`` or rejected) about one binding."""

    by: str
    at: datetime
    binding: Binding
    approved: bool = True
    comment: str = ""
    name: str | None = None  # how to show ``by``

    def __post_init__(self):
        check_signed(self, "an approval names the approver")
        if not isinstance(self.binding, Binding):
            raise ValueError("an approval is bound to an app, tag and spec (a Binding)")

    def evidence(self):
        verb = "approved" if self.approved else "rejected"
        label = f"{verb}: {self.comment}" if self.comment else verb
        return Evidence(label, who=self.name or self.by, when=self.at)


def approval_refusal(policy, requester, approver):
    """Why ``approver`` may not decide on a deployment ``requester`` asked for, or None.

    The Odoo side asks before it records an approval or a rejection; the gate
    ignores such decisions anyway.
    """
    if approver == requester:
        return "You requested this deployment; someone else has to approve or reject it."
    if approver not in policy.approvers:
        return "You are not one of the approvers of this deployment."
    return None


def evaluate_approval(policy, approvals, *, requester, binding, requested_at, now):
    """The *approval* gate.

    Counted: the newest decision of each approver, bound to ``binding``, not
    the requester's. One rejection fails it (APPROVAL_REJECTED); ``required``
    approvals younger than ``valid_for`` pass it; a request older than
    ``expires_after`` without them fails (APPROVAL_EXPIRED); else it waits.
    Decisions on another binding (the tag or spec changed) are void; ``data``
    lists what was voided, expired or ignored, for the approvers to see.
    """
    now, requested_at = as_utc(now), as_utc(requested_at)
    latest, voided, ignored = {}, [], []
    for approval in sorted(approvals, key=lambda approval: approval.at):
        if approval_refusal(policy, requester, approval.by):
            ignored.append(approval)
        elif approval.binding != binding:
            voided.append(approval)
        else:
            latest[approval.by] = approval
    rejected = [item for item in latest.values() if not item.approved]
    approved = [item for item in latest.values() if item.approved]
    valid = [item for item in approved
             if policy.valid_for is None or now < item.at + policy.valid_for]
    expired = [item for item in approved if item not in valid]
    data = {"required": policy.required, "binding": binding.to_dict(),
            "approved": [item.by for item in valid], "expired": [item.by for item in expired],
            "voided": [item.by for item in voided], "ignored": [item.by for item in ignored]}
    if rejected:
        names = ", ".join(item.name or item.by for item in rejected)
        return _result(APPROVAL, FAILED, f"Rejected by {names}.", now, code="APPROVAL_REJECTED",
                       evidence=[item.evidence() for item in rejected], data=data)
    if len(valid) >= policy.required:
        names = ", ".join(item.name or item.by for item in valid)
        expiry = (min(item.at for item in valid) + policy.valid_for
                  if policy.valid_for is not None else None)
        return _result(APPROVAL, PASSED, f"Approved by {names}.", now, recheck_at=expiry,
                       evidence=[item.evidence() for item in valid], data=data)
    deadline = requested_at + policy.expires_after if policy.expires_after else None
    count = f"{len(valid)} of {policy.required} approvals"
    notes = [f"{len(items)} {what}" for items, what in (
        (voided, "voided by a change of tag or spec"), (expired, "expired"))
        if items]
    eligible = policy.approvers - {requester}
    if len(eligible) < policy.required:
        notes.append(f"only {len(eligible)} approver(s) other than the requester")
    detail = f" ({'; '.join(notes)})" if notes else ""
    if deadline is not None and now >= deadline:
        return _result(APPROVAL, FAILED, f"The approval request expired with {count}{detail}.",
                       now, code="APPROVAL_EXPIRED",
                       evidence=[item.evidence() for item in valid], data=data)
    return _result(APPROVAL, PENDING, f"Waiting for approval: {count}{detail}.", now,
                   evidence=[item.evidence() for item in valid], recheck_at=deadline, data=data)


# ---------------------------------------------------------------- decision


@dataclass(frozen=True)
class GateDecision:
    """What the gates decide together: READY, WAITING or REFUSED (with ``code``)."""

    state: str
    message: str
    code: str | None = None
    results: tuple = ()
    waiting_since: datetime | None = None
    recheck_at: datetime | None = None

    @property
    def failed(self):
        return tuple(result for result in self.results if result.status == FAILED)

    @property
    def pending(self):
        return tuple(result for result in self.results if result.status == PENDING)

    @property
    def flagged(self):
        """True when an emergency override decided a gate: the deployment is flagged."""
        return any(result.flagged for result in self.results)

    def to_dict(self):
        return {"state": self.state, "message": self.message, "code": self.code,
                "waiting_since": _iso(self.waiting_since), "recheck_at": _iso(self.recheck_at),
                "flagged": self.flagged, "gates": [result.to_dict() for result in self.results]}


def _names(results):
    return ", ".join(result.name for result in results)


def decide(results, *, now, waiting_since=None, max_wait=None):
    """Combine gate results.

    Any failed gate refuses the deployment with the code of the first one (in
    the order given; list them as :data:`GATE_KINDS` does). Otherwise, any
    pending one makes it wait; ``waiting_since`` (when the deployment began to
    wait, else the earliest ``since`` of the pending gates) is how long, and
    past ``max_wait`` the deployment is refused with GATE_TIMEOUT. No gate, or
    all passed: READY.
    """
    now = as_utc(now)
    results = tuple(results)
    failed = [result for result in results if result.status == FAILED]
    if failed:
        first = failed[0]
        return GateDecision(REFUSED, f"Refused by {_names(failed)}: {first.message}", first.code,
                            results)
    pending = [result for result in results if result.status == PENDING]
    if not pending:
        return GateDecision(READY, "All gates passed." if results else "No gate to pass.",
                            None, results)
    since = as_utc(waiting_since) if waiting_since is not None else min(
        result.since or now for result in pending)
    if max_wait is not None and now - since >= max_wait:
        return GateDecision(REFUSED, f"Still waiting for {_names(pending)} after "
                            f"{_age_text(now - since)}, longer than allowed.", "GATE_TIMEOUT",
                            results, since)
    rechecks = [result.recheck_at for result in pending if result.recheck_at is not None]
    recheck_at = min(rechecks) if rechecks else None
    if max_wait is not None:
        recheck_at = min(filter(None, (recheck_at, since + max_wait)))
    return GateDecision(WAITING, f"Waiting for {_names(pending)}.", None, results, since,
                        recheck_at)
