#!/usr/bin/env bash
# The do_deploy HTTP API with curl: check health, start a deployment, wait for its
# result, and record it on the task (SOP-DEPLOY-001 step 8). Documentation: the
# tests do not run it.
#
#   ODOO_URL=https://odoo.example.com APP=odoo-staging IMAGE_TAG=v1.4.0 \
#   ODOO_API_KEY=...  [TASK_ID=42]  bash docs/ci/curl-example.sh
#
# Authenticate with ODOO_API_KEY (an Odoo API key: Preferences > Account Security >
# New API Key; its user needs the Deployment User group, Deployment Manager for
# production) or, without it, with DO_DEPLOY_WEBHOOK_SECRET (the app's webhook
# secret in Odoo): requests are then signed like GitHub webhooks and run as the
# app's trigger user, which a Deployment Manager sets on the app.
# Every error is JSON: {"error": {"code": "...", "message": "..."}}.
set -euo pipefail

: "${ODOO_URL:?set ODOO_URL}" "${APP:?set APP}" "${IMAGE_TAG:?set IMAGE_TAG}"
TASK_ID=${TASK_ID:-}
POLL_SECONDS=${POLL_SECONDS:-10}
TIMEOUT_SECONDS=${TIMEOUT_SECONDS:-900}

# sign MESSAGE: the X-Hub-Signature-256 value of MESSAGE under the webhook secret.
sign() {
    printf 'sha256=%s' "$(printf '%s' "$1" \
        | openssl dgst -sha256 -hmac "$DO_DEPLOY_WEBHOOK_SECRET" -r | cut -d' ' -f1)"
}

# api METHOD PATH [BODY]: call the API; a POST signs its body, a GET its path.
api() {
    local method=$1 path=$2 body=${3:-}
    local args=(--fail-with-body --silent --show-error --retry 3 --retry-all-errors -X "$method")
    if [ -n "${ODOO_API_KEY:-}" ]; then
        args+=(-H "Authorization: Bearer $ODOO_API_KEY")
    elif [ "$method" = GET ]; then
        args+=(-H "X-Hub-Signature-256: $(sign "$path")")
    else
        args+=(-H "X-Hub-Signature-256: $(sign "$body")")
    fi
    if [ -n "$body" ]; then
        args+=(-H "Content-Type: application/json" --data-binary "$body")
    fi
    curl "${args[@]}" "$ODOO_URL$path"
}

# 1. The Odoo that deploys is up and its database answers (no authentication).
#    200 {"status": "ok", "database": "connected", "version": ...}; 503 when the
#    database is unreachable. Odoo's own /web/health only says the process runs.
curl --fail-with-body --silent --show-error -i "$ODOO_URL/api/v1/health"
echo

# 2. Start the deployment. The idempotency key makes a retried request (here curl's
#    --retry) return the same deployment instead of starting a second one:
#    201 the first time, 200 (header Idempotent-Replayed: true) afterwards.
key="curl-${APP}-${IMAGE_TAG}-$(date -u +%Y%m%d%H%M%S)"
body=$(jq -cn --arg app "$APP" --arg tag "$IMAGE_TAG" --arg key "$key" --arg task "$TASK_ID" \
    '{app: $app, image_tag: $tag, idempotency_key: $key, force_rebuild: false}
     + (if $task == "" then {} else {task_id: ($task | tonumber)} end)')
deployment=$(api POST /api/v1/deployments "$body")
echo "$deployment" | jq .
id=$(jq -r .id <<<"$deployment")

# 3. Poll it: state, progress, every step with its SOP error code, rollback details.
deadline=$((SECONDS + TIMEOUT_SECONDS))
while true; do
    status=$(api GET "/api/v1/deployments/$id")
    state=$(jq -r .state <<<"$status")
    echo "$(date -u +%H:%M:%S) $state $(jq -r .progress <<<"$status")%"
    case "$state" in done|failed|rolled_back|canceled) break ;; esac
    [ "$SECONDS" -lt "$deadline" ] || { echo "still $state after ${TIMEOUT_SECONDS}s" >&2; exit 1; }
    sleep "$POLL_SECONDS"
done
jq -r '.steps[] | "\(.sequence). \(.code): \(.state) \(.error_code // "")"' <<<"$status"
jq '{error, rollback}' <<<"$status"

# 4. SOP step 8 from CI: read and set the task's deployment state. Odoo's own
#    deployments already do this on the task; CI that deploys by other means reports
#    here. Needs an API key (the state is written as its user).
if [ -n "$TASK_ID" ] && [ -n "${ODOO_API_KEY:-}" ]; then
    api GET "/api/v1/tasks/$TASK_ID" | jq .
    case "$state" in
        done) task_state=deployed ;;
        rolled_back) task_state=rolled_back ;;
        *) task_state=failed ;;
    esac
    api POST "/api/v1/tasks/$TASK_ID" "$(jq -cn --arg state "$task_state" \
        --arg deployment "$id" --arg at "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        '{state: $state, deployment_id: $deployment, deployed_at: $at, deployed_by: "curl example"}')" \
        | jq .
fi
[ "$state" = done ]
