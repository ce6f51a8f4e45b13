#!/usr/bin/env bash
# The README's test command. Runs every layer this machine can run and says
# plainly which ran:
#   1. engine  - pytest, no Odoo, no database; fails under 90 % line coverage;
#      then ruff and pylint-odoo where they are installed;
#   2. odoo    - installs do_deploy on a fresh database of real PostgreSQL with
#                real Odoo 19 and runs its tests, browser tours included.
# Layer 2 runs wherever Odoo 19 is importable by $PYTHON (default python3); it
# then needs PostgreSQL and Chromium and fails loudly when one is missing,
# because Odoo would otherwise skip tests instead of failing them.
set -uo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")";; esac  # survives the cd below
cd "$ROOT" || exit 2

engine_passed=0; engine_failed=0; odoo_passed=0; odoo_failed=0; pytest_odoo=""; setup_layer=""; setup_passed=0; setup_failed=0
status=0

echo "== engine suite (no Odoo, no database)"
engine_log=$(mktemp)
$PY -m pytest engine/tests -q --cov=engine --cov-config=.coveragerc \
    --cov-report=term --cov-fail-under=90 2>&1 | tee "$engine_log"
engine_rc=${PIPESTATUS[0]}
summary=$(grep -E '^=+ .*(passed|failed|error).* =+$|^[0-9]+ (passed|failed)' "$engine_log" | tail -1)
engine_passed=$(grep -oE '[0-9]+ passed' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
engine_failed=$(( $(grep -oE '[0-9]+ failed' <<<"$summary" | grep -oE '[0-9]+' || echo 0) \
                + $(grep -oE '[0-9]+ error' <<<"$summary" | grep -oE '[0-9]+' || echo 0) ))
engine_skipped=$(grep -oE '[0-9]+ skipped' <<<"$summary" | grep -oE '[0-9]+' || echo 0)
rm -f "$engine_log"
if [ "$engine_rc" -ne 0 ]; then
    echo "engine suite FAILED (pytest exit $engine_rc; coverage under 90 % also fails it)"
    [ "$engine_failed" -eq 0 ] && engine_failed=1
    status=1
fi

echo
echo "== lint (ruff, pylint-odoo, the Apps page against readme/)"
lint="ran"
if $PY -m ruff --version >/dev/null 2>&1 && $PY -c 'import pylint_odoo, docutils' 2>/dev/null; then
    $PY -m ruff check . || { echo "lint FAILED: ruff"; status=1; lint="FAILED"; }
    $PY -m pylint --rcfile=.pylintrc --score=n . || { echo "lint FAILED: pylint-odoo"; status=1; lint="FAILED"; }
    $PY tools/readme_html.py --check || { echo "lint FAILED: the Apps page"; status=1; lint="FAILED"; }
else
    lint="NOT RUN (pip install ruff pylint-odoo docutils)"
    echo "lint $lint"
fi

echo
echo "== odoo suite (real Odoo 19, real PostgreSQL, headless Chromium)"
odoo_version=$($PY -c 'import odoo.release as r; print(r.version)' 2>/dev/null)
case "$odoo_version" in
19.*)
    missing=()
    pg_isready -q -h "${PGHOST:-127.0.0.1}" 2>/dev/null \
        || missing+=("a PostgreSQL server answering on ${PGHOST:-127.0.0.1} (pg_isready failed)")
    command -v chromium >/dev/null || command -v chromium-browser >/dev/null \
        || command -v google-chrome >/dev/null \
        || missing+=("Chromium for the tours (apt-get install chromium)")
    $PY -c 'import websocket' 2>/dev/null \
        || missing+=("the websocket-client package for the tours (pip install websocket-client)")
    if [ ${#missing[@]} -gt 0 ]; then
        printf 'odoo suite CANNOT RUN, missing: %s\n' "${missing[@]}"
        odoo_failed=1; status=1
    else
        core_path=$($PY "$ROOT/tools/odoo_env.py")
        addons_dir=$(mktemp -d)
        ln -s "$ROOT" "$addons_dir/do_deploy"
        db="do_deploy_test_$$"
        port=$($PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
        odoo_log=$(mktemp)
        echo "Odoo $odoo_version from $core_path, database $db, http port $port"
        (cd "$addons_dir" && $PY -m odoo server -d "$db" -i do_deploy --addons-path="${ADDONS_PATH:-$core_path},$addons_dir" \
            --test-tags "${ODOO_TEST_TAGS:-/do_deploy}" --http-port="$port" --http-interface=127.0.0.1 --db_host="${PGHOST:-127.0.0.1}" \
            --log-level=test --stop-after-init --workers=0 --max-cron-threads=0 \
            >"$odoo_log" 2>&1)
        odoo_rc=$?
        grep -E 'ERROR|WARNING|FAIL|skipped|tests when loading|post-tests|Ran [0-9]' "$odoo_log" \
            | grep -vE 'Session expired' | tail -60
        state=$(psql -h "${PGHOST:-127.0.0.1}" -Atc \
            "select state from ir_module_module where name='do_deploy'" "$db" 2>/dev/null)
        result=$(grep -oE '[0-9]+ failed, [0-9]+ error\(s\) of [0-9]+ tests' "$odoo_log" | tail -1)
        total=$(grep -oE 'of [0-9]+ tests' <<<"$result" | grep -oE '[0-9]+' || echo 0)
        bad=$(( $(grep -oE '^[0-9]+' <<<"$result" || echo 0) \
              + $(grep -oE '[0-9]+ error' <<<"$result" | grep -oE '[0-9]+' || echo 0) ))
        odoo_passed=$(( total - bad )); odoo_failed=$bad
        skips=$(grep -cE 'odoo.tests.*skipped|SkipTest' "$odoo_log")
        # Warnings of the loggers that report bad views, fields, models and data.
        warnings=$(grep -E " WARNING $db (odoo\.addons\.do_deploy\S*|odoo\.addons\.base\.models\.ir_ui_view|odoo\.(orm|models|fields|schema|registry|modules\.loading|tools\.convert|tools\.translate)\S*): " \
            "$odoo_log" | grep -vE 'odoo\.addons\.do_deploy\.tests\.' | head -20)
        if [ "$state" != "installed" ]; then
            echo "odoo suite FAILED: do_deploy is '${state:-absent}' after install, not 'installed'"
            odoo_failed=$((odoo_failed + 1)); status=1
        fi
        if [ "$odoo_rc" -ne 0 ] || [ -z "$result" ] || [ "$bad" -ne 0 ] || [ "$total" -eq 0 ]; then
            echo "odoo suite FAILED (odoo exit $odoo_rc, result: ${result:-no test result line})"
            [ "$odoo_failed" -eq 0 ] && odoo_failed=1
            status=1
        fi
        if [ "$skips" -ne 0 ]; then
            echo "odoo suite FAILED: $skips test(s) were skipped (a missing browser or package?)"
            odoo_failed=$((odoo_failed + skips)); status=1
        fi
        if [ -n "$warnings" ]; then
            echo "odoo suite FAILED: the install logged warnings about do_deploy:"; echo "$warnings"
            odoo_failed=$((odoo_failed + 1)); status=1
        fi
        # The same suite through pytest-odoo, the runner DESIGN.md names, on the database
        # the install left: it must collect every test Odoo ran and pass them all.
        if [ "$state" = "installed" ] && [ "$total" -gt 0 ]; then
            echo
            echo "== odoo suite again, through pytest-odoo (--odoo-http: HttpCase and tours included)"
            pytest_log=$(mktemp)
            # A subset (ODOO_TEST_TAGS=/do_deploy:TestA,/do_deploy:TestB.test_x) is the
            # same subset here, as node ids: "-k TestStageReport" also took TestStageReportPdf.
            selection=(do_deploy/tests)
            if [ -n "${ODOO_TEST_TAGS:-}" ]; then
                selection=()
                for tag in $(tr ',' ' ' <<<"$ODOO_TEST_TAGS"); do
                    test_class=${tag#*:}; test_method=""
                    case "$test_class" in *.*) test_method="::${test_class#*.}"; test_class=${test_class%%.*};; esac
                    file=$(grep -l "^class $test_class(" tests/*.py | head -1)
                    [ -n "$file" ] && selection+=("do_deploy/$file::$test_class$test_method")
                done
            fi
            (cd "$addons_dir" && $PY -m pytest -o addopts="-p no:cacheprovider" -q \
                --odoo-database="$db" --odoo-addons-path="${ADDONS_PATH:-$core_path},$addons_dir" \
                --odoo-extra="db_host=${PGHOST:-127.0.0.1}" --odoo-http "${selection[@]}") >"$pytest_log" 2>&1
            pytest_rc=$?
            tail -3 "$pytest_log"
            line=$(grep -E '^=*.*[0-9]+ (passed|failed)' "$pytest_log" | tail -1)
            pt_passed=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
            pytest_odoo="pytest-odoo ($pt_passed passed of $total)"
            if [ "$pytest_rc" -ne 0 ] || [ "$pt_passed" -ne "$total" ] || grep -qE '[0-9]+ (skipped|failed|error)' <<<"$line"; then
                echo "odoo suite FAILED through pytest-odoo (exit $pytest_rc): $line"
                cp "$pytest_log" "${TMPDIR:-/tmp}/do_deploy_pytest_odoo.log"
                echo "full pytest-odoo log: ${TMPDIR:-/tmp}/do_deploy_pytest_odoo.log"
                odoo_failed=$((odoo_failed + 1)); status=1
                pytest_odoo="pytest-odoo FAILED"
            fi
            rm -f "$pytest_log"
        fi
        [ "$status" -ne 0 ] && cp "$odoo_log" "${TMPDIR:-/tmp}/do_deploy_odoo_test.log" \
            && echo "full Odoo log: ${TMPDIR:-/tmp}/do_deploy_odoo_test.log"
        dropdb -h "${PGHOST:-127.0.0.1}" --if-exists "$db" 2>/dev/null
        rm -rf "$addons_dir" "$odoo_log"
    fi
    echo
    echo "== setup (tools/tests: setup.sh on a copy of the project: failures, repair, ODOO_PYTHON; readme_html.py)"
    setup_log=$(mktemp)
    $PY -m pytest tools/tests -q 2>&1 | tee "$setup_log" | tail -15
    setup_rc=${PIPESTATUS[0]}
    line=$(grep -E '^=*.*[0-9]+ (passed|failed)' "$setup_log" | tail -1)
    setup_passed=$(grep -oE '[0-9]+ passed' <<<"$line" | grep -oE '[0-9]+' || echo 0)
    setup_failed=$(( $(grep -oE '[0-9]+ failed' <<<"$line" | grep -oE '[0-9]+' || echo 0) \
                   + $(grep -oE '[0-9]+ error' <<<"$line" | grep -oE '[0-9]+' || echo 0) ))
    if [ "$setup_rc" -ne 0 ] || grep -q skipped <<<"$line"; then
        echo "setup tests FAILED (pytest exit $setup_rc)"
        [ "$setup_failed" -eq 0 ] && setup_failed=1
        status=1
    fi
    setup_layer="; setup ran ($setup_passed passed, $setup_failed failed)"
    rm -f "$setup_log"
    ;;
*)
    echo "odoo suite NOT RUN: no Odoo 19 is importable by $PY (set PYTHON to one that has it)"
    ;;
esac

echo
engine_skips=""
[ "$engine_skipped" -gt 0 ] && engine_skips=", $engine_skipped skipped: pytest -rs says why"
echo "== layers: engine ran ($engine_passed passed, $engine_failed failed$engine_skips); lint $lint;" \
     "odoo ${odoo_version:+ran on $odoo_version }($odoo_passed passed, $odoo_failed failed)${pytest_odoo:+; $pytest_odoo}$setup_layer"
echo "$((engine_passed + odoo_passed + setup_passed)) passed, $((engine_failed + odoo_failed + setup_failed)) failed"
exit $status
