"""Every error code of SOP-DEPLOY-001, the single source of truth.

The Odoo model ``do.error.code`` loads its records from :data:`ERROR_CODES`.
The SOP's reference table gives severity and resolution time for ten codes;
the other 21, and the codes in :data:`BEYOND_SOP`, were set by one rule, also in
docs/error-codes.md:

* critical: traffic or data of the running app is at risk, or no deployment
  of the app can proceed until a person acts;
* high: this deployment stops and needs a change (spec, image, settings);
* medium: transient or self-healing; waiting or retrying usually resolves it;
* low: cosmetic or informational.

Resolution times follow the SOP's where given, else the time the mitigation
takes a person who knows the app; ``None`` means "varies" (a rollback).
"""

from collections import namedtuple

ErrorCode = namedtuple(
    "ErrorCode",
    "code step severity description resolution_minutes mitigation",
)

SEVERITIES = ("low", "medium", "high", "critical")
# The quality gates' codes (step 0: checked before step 1 starts), beyond the SOP too.
QUALITY_GATE_CODES = frozenset({
    "CI_COMMIT_NOT_FOUND", "GITHUB_UNAUTHORIZED", "GITHUB_UNAVAILABLE", "CI_CHECKS_FAILED",
    "IMAGE_SCAN_FAILED", "NOT_TESTED_IN_STAGING", "CONFIRMATION_REFUSED", "DEPLOY_FROZEN",
    "APPROVAL_REJECTED", "APPROVAL_EXPIRED", "GATE_TIMEOUT",
})
# Codes the SOP does not have, added for failures it does not foresee:
# URL_NOT_ALLOWED is engine.urls refusing a URL of this server's own network;
# PIPELINE_ERROR is Odoo's pipeline failing a deployment whose own failure handling broke;
# NOTIFICATION_CHANNEL_INVALID is a notification channel refused for missing settings;
# the NOTIFICATION_CODES are a notification that could not be delivered.
# Refusals of a dry run or a promotion, in Odoo before any deployment exists, beyond the SOP.
CHANGE_PREVIEW_CODES = frozenset({"DRY_RUN_TOO_LATE", "PROMOTION_NOT_ALLOWED",
                                  "NO_PRODUCTION_COUNTERPART"})
NOTIFICATION_CODES = frozenset({"NOTIFICATION_CHANNEL_INVALID", "NOTIFICATION_REJECTED",
                                "NOTIFICATION_RATE_LIMITED", "NOTIFICATION_RECEIVER_UNAVAILABLE"})
BEYOND_SOP = QUALITY_GATE_CODES | CHANGE_PREVIEW_CODES | NOTIFICATION_CODES | frozenset({
    "URL_NOT_ALLOWED", "PIPELINE_ERROR"})

_ROWS = [
    # Quality gates, checked before step 1 (the SOP's "Quality Gates (Before Deployment)")
    ("CI_COMMIT_NOT_FOUND", 0, "high",
     "GitHub knows no such repository or commit, or the token cannot see it.", 10,
     "Check the app's GitHub repository (owner/name) and the deployment's commit (by default "
     "the image tag, which the SOP sets to the commit SHA); push the commit, or give the "
     "token read access to the repository."),
    ("GITHUB_UNAUTHORIZED", 0, "critical",
     "The GitHub token is missing, invalid or cannot read commit statuses and checks.", 10,
     "Create a token that can read the repository's commit statuses and checks (fine-grained: "
     "'Commit statuses' and 'Checks' read; classic: repo) and save it in the GitHub settings."),
    ("GITHUB_UNAVAILABLE", 0, "medium",
     "GitHub's API did not answer, failed, or is rate-limiting the token.", 5,
     "Usually nothing: the CI gate is checked again by itself, after the time GitHub gave when "
     "it limits the token. If it lasts, check GitHub's status page and the other tools that "
     "use the same token."),
    ("CI_CHECKS_FAILED", 0, "high",
     "A CI check or commit status of the image's commit failed on GitHub.", 30,
     "Open the failing check linked on the gate, fix the code or the test, push a new commit "
     "and deploy the image built from it."),
    ("IMAGE_SCAN_FAILED", 0, "high",
     "The image security scan of the image's commit failed or did not run.", 60,
     "Open the scan's report linked on the gate, update the base image or the vulnerable "
     "packages, rebuild and deploy the new tag; a skipped scan has to run first."),
    ("NOT_TESTED_IN_STAGING", 0, "high",
     "The image tag has no recent successful deployment on the app's staging counterpart.", 30,
     "Deploy the same tag to staging, check it there, then deploy it to this app again."),
    ("CONFIRMATION_REFUSED", 0, "high",
     "A person declined a confirmation item of the deployment, such as feature flags.", 15,
     "Read their comment on the gate, set up what is missing (feature flags, migrations), "
     "then request the deployment again."),
    ("DEPLOY_FROZEN", 0, "medium", "A freeze window refuses deployments now.", 10,
     "Deploy after the freeze window ends (the gate shows when), or have a manager give an "
     "emergency override with a reason."),
    ("APPROVAL_REJECTED", 0, "high", "An approver rejected the deployment.", 30,
     "Read the approver's comment, change what they asked for and request the deployment "
     "again."),
    ("APPROVAL_EXPIRED", 0, "medium",
     "The deployment was not approved before its approval request expired.", 15,
     "Request the deployment again and ask the approvers to decide before the request "
     "expires."),
    ("GATE_TIMEOUT", 0, "medium",
     "The deployment waited on its quality gates longer than the app allows.", 15,
     "See which gates were still pending (CI, staging, confirmations, freeze, approval), "
     "resolve them and request the deployment again."),
    # Dry run and promotion: refused in Odoo before a deployment exists
    ("DRY_RUN_TOO_LATE", 0, "low",
     "The deployment has already started changing the app, so a dry run would show nothing.",
     5,
     "Read the deployment's steps for what it changed, or dry-run a new deployment from the "
     "Deploy wizard."),
    ("PROMOTION_NOT_ALLOWED", 0, "low",
     "Only a finished (done) deployment of a tag to a staging app can be promoted.", 5,
     "Promote the staging deployment that succeeded, wait for the promotion already under "
     "way, or deploy to production with the Deploy button."),
    ("NO_PRODUCTION_COUNTERPART", 0, "high",
     "The staging app has no production app to promote to.", 10,
     "A Deployment Manager sets the production counterpart on the staging app's form, then "
     "promote again."),
    # Step 1: update app spec
    ("APP_SPEC_SYNTAX_ERROR", 1, "high", "Invalid YAML syntax in the app spec.", 10,
     "Fix the YAML at the line and column given in the message, then deploy again."),
    ("IMAGE_TAG_MISSING", 1, "medium", "Image tag not specified or not valid.", 5,
     "Give a Docker image tag (letters, digits, '.', '_' or '-', at most 128 characters) "
     "that exists in the registry."),
    ("PLACEHOLDER_VALUES", 1, "high", "Placeholder values remain in the app spec.", 10,
     "Replace the placeholder at the path named in the message (YOUR_..., PLACEHOLDER, TODO "
     "or ${...}) with the real value in the app spec."),
    ("INVALID_RESOURCE_SPEC", 1, "high", "Invalid resource allocation in the app spec.", 10,
     "Use an instance size slug App Platform offers and an instance count of at least 1 "
     "at the path named in the message; check it with 'doctl apps propose'."),
    # Step 2: apply app spec
    ("APP_NOT_FOUND", 2, "high", "The app ID is not known to this DigitalOcean account.", 15,
     "Check the app's DigitalOcean ID on the app record against 'doctl apps list' and the "
     "account's token."),
    ("SPEC_VALIDATION_FAILED", 2, "high", "DigitalOcean rejected the app spec.", 15,
     "Read DigitalOcean's message on the step, correct the spec and validate it with "
     "'doctl apps propose' before deploying again."),
    ("UNAUTHORIZED", 2, "critical",
     "The DigitalOcean access token is missing, invalid or lacks a scope.", 10,
     "Create a new token with app:read, app:update and registry:read scopes and save it "
     "on the DigitalOcean account record."),
    ("RATE_LIMIT_EXCEEDED", 2, "medium", "DigitalOcean API rate limit exceeded.", 5,
     "Wait until the rate-limit window resets (the step shows when) and retry; reduce other "
     "scripts that use the same token."),
    ("URL_NOT_ALLOWED", 2, "critical",
     "A URL points at an address of this server's own network, which is not fetched.", 10,
     "Use the public URL of DigitalOcean's API or of the app; if the address is meant (a "
     "simulator or a private network), a system administrator allows that host or network "
     "in the server configuration."),
    # Step 3: create deployment
    ("DEPLOYMENT_CREATE_FAILED", 3, "critical", "Unable to create the deployment.", 20,
     "Check the app's current deployment in the DigitalOcean console; if none is running, "
     "retry the deployment."),
    ("BUILD_SPEC_ERROR", 3, "high", "The build specification is invalid.", 15,
     "Review the components' source and build settings in the spec (image, dockerfile_path, "
     "build_command) and validate with 'doctl apps propose'."),
    ("IMAGE_PULL_FAILURE", 3, "high", "The Docker image could not be pulled.", 10,
     "Push the image with this tag to the registry, or pick a tag that exists, then deploy again."),
    ("INSUFFICIENT_QUOTA", 3, "critical", "The DigitalOcean account has insufficient quota.", 60,
     "Free resources in the account or ask DigitalOcean support to raise the limit."),
    # Step 4: monitor
    ("DEPLOY_TIMEOUT", 4, "high", "The deployment exceeded its time budget.", 30,
     "Read the build log on the step, make the build faster or raise the app's time budget."),
    ("BUILD_FAILED", 4, "high", "The Docker build failed.", 20,
     "Read the build log on the step, fix the Dockerfile or dependencies and deploy a new tag."),
    ("DEPLOY_ERROR", 4, "critical", "The deployment failed during rollout.", 20,
     "Read the deploy log on the step; the previous version keeps serving until it is fixed."),
    ("HEALTH_CHECK_TIMEOUT", 4, "high",
     "DigitalOcean's own health check of the new version timed out.", 15,
     "Raise initial_delay_seconds or timeout_seconds of the component's health_check in the spec, "
     "or make the app start faster."),
    # Step 5: health check
    ("HEALTH_CHECK_FAIL", 5, "critical", "The health endpoint did not answer OK.", None,
     "The deployment is rolled back; read the run log on the step before deploying again."),
    ("DATABASE_CONNECTION_ERROR", 5, "critical", "The app cannot reach its database.", 15,
     "Check the database credentials and trusted sources in the app spec's databases and envs."),
    ("SERVICE_UNAVAILABLE", 5, "critical",
     "The service, or DigitalOcean's API, is not responding.", 15,
     "Check the app's run log and DigitalOcean's status page; restart the component "
     "or retry later."),
    ("RESPONSE_TIMEOUT", 5, "high", "The health check took longer than its time budget.", 20,
     "Investigate slow start-up in the run log, or scale the component up."),
    # Step 6: traffic switch
    ("TRAFFIC_SWITCH_FAILED", 6, "high", "Traffic was not switched to the new deployment.", 20,
     "Force a new deployment of the same tag; check that the app's active deployment is this one."),
    ("LOAD_BALANCER_ERROR", 6, "critical",
     "The app's ingress or load balancer returned an error.", 20,
     "Check the app's ingress and domains in the DigitalOcean console."),
    ("DNS_PROPAGATION_DELAY", 6, "medium", "The app's hostname does not resolve yet.", 15,
     "Wait for DNS to propagate (usually minutes) and check with 'nslookup' before retrying."),
    ("SSL_CERTIFICATE_ERROR", 6, "critical",
     "The TLS certificate of the app is invalid or expires soon.", 30,
     "Check the domain's certificate in the DigitalOcean console; renew it or fix the domain."),
    # Step 7: post-deployment validation
    ("ENDPOINT_404", 7, "high", "A critical endpoint is missing.", 15,
     "Check the routes of the app's services in the spec and the app's URL configuration."),
    ("STATIC_ASSET_MISSING", 7, "high", "Static files are not served.", 15,
     "Check that the image contains the static files and that the route serves them."),
    ("API_ERROR", 7, "high", "An API endpoint returned an error or an unexpected answer.", 20,
     "Read the run log for the failing request and fix the endpoint."),
    ("PERFORMANCE_DEGRADATION", 7, "medium", "Response times exceed the SLA.", 30,
     "Scale the component up (larger instance size or more instances) or fix the slow code."),
    # Step 8: update the task
    ("ODOO_API_ERROR", 8, "medium", "Odoo could not record the deployment on the task.", 10,
     "Check the Odoo server log; the deployment itself succeeded, update the task by hand."),
    ("TASK_NOT_FOUND", 8, "low", "The task of the deployment does not exist any more.", 5,
     "Link the deployment to an existing task, or ignore it if the task was deleted on purpose."),
    ("UNAUTHORIZED_API", 8, "high", "Invalid or missing Odoo API key.", 10,
     "Create a new API key in Odoo (Preferences > Account Security > API Keys) and give it "
     "to the caller."),
    ("PIPELINE_ERROR", 8, "critical",
     "Odoo could not handle this deployment's failure, so it stopped the deployment.", 20,
     "Look at the app in the DigitalOcean console (which deployment is active, whether it is "
     "pinned to a rollback) and at the Odoo server log for the error logged with this "
     "deployment's name; then roll back or deploy again by hand."),
    # Notifications (telling people, the end of a deployment)
    ("NOTIFICATION_CHANNEL_INVALID", 8, "low",
     "A notification channel lacks what it needs to send, its receiver's URL is unusable, or "
     "it plays a role of another type.",
     5,
     "Give the Slack channel its incoming webhook URL, the PagerDuty channel its 32-character "
     "integration key and Events API URL, the e-mail channel a recipient; a URL is the "
     "service's own https URL, with a certificate this server trusts; a role is played by a "
     "channel of its type (Slack, e-mail, PagerDuty). Then use Send test message."),
    ("NOTIFICATION_REJECTED", 8, "low",
     "The receiver refused the notification; sending it again unchanged would fail again.", 10,
     "Read the receiver's reason on the attempt: invalid_token, no_service, HTTP 403 or 404 "
     "mean the webhook or integration was removed (create a new one and save it on the "
     "channel); a redirect means the URL is not the final one; invalid_payload or an invalid "
     "event means a defect of do_deploy (report it with the attempt). Then use Send test "
     "message, and Send again on the notification."),
    ("NOTIFICATION_RATE_LIMITED", 8, "medium",
     "The receiver is limiting how many notifications it accepts (HTTP 429).", 5,
     "Usually nothing: the notification is sent again after the time the receiver asked for. "
     "If it lasts, lower what the channel gets with rules, or check what else posts to the "
     "same webhook or service."),
    ("NOTIFICATION_RECEIVER_UNAVAILABLE", 8, "medium",
     "The receiver did not answer in time, could not be reached, or failed (HTTP 5xx).", 5,
     "Usually nothing: the notification is sent again with a growing delay (6 attempts over "
     "about an hour). If it lasts, check the service's status page and that this server "
     "reaches the receiver's host (firewall, proxy); after the last attempt use Send again "
     "on the notification."),
]

ERROR_CODES = {row[0]: ErrorCode(*row) for row in _ROWS}


def get(code):
    """Return the catalogue entry of ``code``; raise KeyError if unknown."""
    return ERROR_CODES[code]
