#!/usr/bin/env bash
# `make demo`: a demo database with do_deploy and its demo data, served by Odoo
# with the DigitalOcean simulator running beside it, so a new user can click
# Deploy at once. Usage: tools/demo.sh [DB] [ODOO_PORT] [SIMULATOR_PORT]
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac  # survives the cd below
DB=${1:-do_deploy_demo}; PORT=${2:-8069}; SIM_PORT=${3:-8799}
PGHOST=${PGHOST:-127.0.0.1}
cd "$ROOT" || exit 2

missing=()
version=$($PY -c 'import odoo.release as r; print(r.version)' 2>/dev/null)
case "$version" in 19.*) ;; *) missing+=("Odoo 19 importable by $PY (found: ${version:-none})");; esac
pg_isready -q -h "$PGHOST" 2>/dev/null || missing+=("a PostgreSQL server on $PGHOST (pg_isready failed)")
$PY -c 'import requests, yaml' 2>/dev/null || missing+=("the requests and PyYAML packages (pip install -r requirements.txt)")
if [ ${#missing[@]} -gt 0 ]; then
    printf 'make demo cannot start, missing: %s\n' "${missing[@]}" >&2
    exit 1
fi

core_path=$($PY "$ROOT/tools/odoo_env.py")
addons_dir=$(mktemp -d)
ln -s "$ROOT" "$addons_dir/do_deploy"
addons_path="${ADDONS_PATH:-$core_path},$addons_dir"

$PY -m engine.simulator --host 127.0.0.1 --port "$SIM_PORT" --seed demo &
sim_pid=$!
trap 'kill $sim_pid 2>/dev/null; rm -rf "$addons_dir"' EXIT INT TERM

state=$(psql -h "$PGHOST" -Atc "select state from ir_module_module where name='do_deploy'" "$DB" 2>/dev/null)
if [ "$state" != "installed" ]; then
    echo "Creating demo database $DB (about a minute)..."
    (cd "$addons_dir" && $PY -m odoo server -d "$DB" -i do_deploy --with-demo --addons-path="$addons_path" \
        --db_host="$PGHOST" --stop-after-init --http-interface=127.0.0.1 --log-level=warn) || exit 1
    state=$(psql -h "$PGHOST" -Atc "select state from ir_module_module where name='do_deploy'" "$DB")
    [ "$state" = "installed" ] || { echo "do_deploy is '$state' in $DB, not installed" >&2; exit 1; }
fi

# The simulator is on this server's loopback, which the pipeline fetches only when the
# system parameter do_deploy.allowed_networks allows it: the demo data sets it, and a
# demo database made before that setting existed gets it here.
psql -h "$PGHOST" -qc "INSERT INTO ir_config_parameter (key, value, create_date, write_date)
                       VALUES ('do_deploy.allowed_networks', '127.0.0.1', now(), now())
                       ON CONFLICT (key) DO NOTHING" "$DB" || exit 1

# The demo account and the demo apps' ingress point at the simulator this script
# started, whatever its port; then the demo apps' live version, as the simulator reports
# it (v1.0.0 on a new simulator). Odoo's own log of opening the database is shown only
# if that fails.
sync_log=$(mktemp)
(cd "$addons_dir" && $PY - "$DB" "$ROOT" "$PGHOST" "$SIM_PORT" 2>"$sync_log" <<'PYEOF'
import sys
sys.path.insert(0, sys.argv[2] + "/tools")
from demo_simulator import point_demo_at_simulator
from odoo_env import odoo_env
with odoo_env(sys.argv[1], sys.argv[3]) as env:
    point_demo_at_simulator(env, sys.argv[4])
    apps = env["do.app"].search([("account_id.backend", "=", "simulator")])
    for app, error in apps._sync_from_digitalocean().items():
        print(f"{app.name}: live version not read: {error.code}: {error.message}")
PYEOF
) || { cat "$sync_log" >&2; rm -f "$sync_log"; exit 1; }
rm -f "$sync_log"

scenario_tags=$($PY -c 'from engine.simulator.demo import DEMO_SCENARIO_TAGS as tags
for tag, what in tags.items():
    print(f"    {tag:<30} {what}")')
cat <<EOF

Demo ready: http://localhost:$PORT
  admin / admin  Deployment Manager: deploys to production, rolls back, configures
  demo / demo    Deployment User: deploys to staging
Simulator (DigitalOcean App Platform): http://127.0.0.1:$SIM_PORT; both apps serve v1.0.0.

Try:
  1. Project > Website relaunch > "New login page" > Deploy: the wizard proposes v1.1.0
     (the task names it); pick odoo-staging, confirm and watch the eight steps.
  2. On that live deployment (or its task), Roll back as admin: it shows v1.1.0 -> v1.0.0,
     asks why, returns the app to v1.0.0 and the task to Ready to Deploy.
  3. Deploy v1.4.0--health-fail-always to odoo-staging: the health check fails, the app
     goes back to the version before and an incident lands in Project > Incidents.
  4. Deploy v9.9.9: the wizard refuses it with IMAGE_TAG_MISSING (not in the registry).
Tags in the demo registry: v1.0.0 v1.1.0 v1.2.0 v1.3.0, and these failures:
$scenario_tags
Deployments > History and Deployments > Error Codes show what happened. Ctrl+C stops both.

EOF
cd "$addons_dir" && $PY -m odoo server -d "$DB" --db-filter="^$DB\$" --addons-path="$addons_path" --db_host="$PGHOST" \
    --http-port="$PORT" --http-interface=127.0.0.1
