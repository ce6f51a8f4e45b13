#!/usr/bin/env bash
# `make pot`: regenerate i18n/do_deploy.pot from a database that has do_deploy
# installed (Odoo's own `i18n export`). Usage: tools/pot.sh [DB]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac  # survives the cd below
DB=${1:-do_deploy_demo}
core_path=$($PY "$ROOT/tools/odoo_env.py")
addons_dir=$(mktemp -d)
config=$(mktemp)
trap 'rm -rf "$addons_dir" "$config"' EXIT
# A copy without .venv and .git: Odoo extracts terms from every file under the module's
# directory, and .venv holds a whole Odoo (130,000 lines of other modules' terms).
mkdir "$addons_dir/do_deploy"
tar -C "$ROOT" --exclude=./.venv --exclude=./.git -cf - . | tar -C "$addons_dir/do_deploy" -xf -
printf '[options]\ndb_host = %s\naddons_path = %s\n' "${PGHOST:-127.0.0.1}" \
    "${ADDONS_PATH:-$core_path},$addons_dir" >"$config"
(cd "$addons_dir" && $PY -m odoo i18n export -c "$config" -d "$DB" do_deploy)
cp "$addons_dir/do_deploy/i18n/do_deploy.pot" "$ROOT/i18n/do_deploy.pot"
