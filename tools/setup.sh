#!/usr/bin/env bash
# `make setup`: everything the test, demo, lint and bench commands need, on a fresh
# machine, in one idempotent command.
#
#   1. system parts, installed with apt-get where missing (root or sudo):
#      PostgreSQL (cluster started, a role for this user), Chromium, the venv module,
#      libpq headers and a C compiler (psycopg2 builds from source);
#   2. Odoo 19, the first of:
#      a. ODOO_PYTHON=/path/to/python  a Python (or a venv's) that already imports Odoo 19:
#                                      .venv is made from the same interpreter and sees
#                                      its packages, Odoo included; nothing is downloaded
#                                      but the project's own requirements;
#      b. ODOO_SRC=/path/to/tree       an Odoo 19 tree holding odoo/release.py (a git
#                                      checkout, or an installed .../dist-packages);
#      c. Debian's odoo-19 package, pinned, fetched with apt-get into the per-user cache
#         without touching the machine's apt sources;
#      d. a shallow clone of odoo/odoo's 19.0 branch (machines without apt);
#   3. .venv in the project with Odoo's pinned requirements (requirements-odoo19.txt)
#      and the project's (requirements.txt), Odoo importable from it.
#
# .venv/.setup-complete is written last, so a half-done setup never looks done; the
# next run repairs whatever an interrupted one left. A run with nothing to do takes
# seconds. Cache: $DO_DEPLOY_CACHE (default ${XDG_CACHE_HOME:-~/.cache}/do_deploy).
set -euo pipefail
shopt -s inherit_errexit

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=$ROOT/.venv
MARKER=$VENV/.setup-complete
CACHE=${DO_DEPLOY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/do_deploy}
ODOO_DEB_VERSION=${ODOO_DEB_VERSION:-19.0.0+dfsg-1}
ODOO_GIT_URL=${ODOO_GIT_URL:-https://github.com/odoo/odoo.git}
BASE_PYTHON=${SETUP_PYTHON:-python3}
PGHOST=${PGHOST:-127.0.0.1}
# Debian replaces Odoo's bundled fonts and JS libraries with symlinks into these
# packages; unpacked beside Odoo they make those links resolve. They are taken from
# bookworm where it has them: sid's newer font-awesome and inconsolata moved files.
DEB_LINK_SUITE=bookworm
DEB_LINK_TARGETS=(fonts-font-awesome fonts-roboto-unhinted fonts-ocr-b fonts-inconsolata
                  libjs-jquery libjs-jquery-form libjs-underscore fonts-montserrat)
# Debian strips this file (minified upstream code) but mail's manifest still lists it;
# without it every browser tour fails on a console error. Its upstream is on npm.
SELFIE_FILE=mail/static/lib/selfie_segmentation/selfie_segmentation.js
SELFIE_NPM=@mediapipe/selfie_segmentation@0.1.1675465747

started=$(date +%s)
say() { printf '%s\n' "$*"; }
part() { printf '  %-12s %s\n' "$1" "$2"; }
CLEANUP=()  # what a failing run removes: work that the next run would redo anyway
die() { printf 'make setup FAILED: %s\n' "$*" >&2; rm -rf "${CLEANUP[@]}"; exit 3; }
# Any other failing command ends setup with what failed, never silently.
set -E
trap 'rc=$?; [ "$rc" -eq 3 ] && exit 3; die "line $LINENO of tools/setup.sh failed: $BASH_COMMAND"' ERR

as_root=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null && sudo -n true 2>/dev/null && as_root=(sudo -n)
fi
can_apt() { command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || [ ${#as_root[@]} -gt 0 ]; }; }
apt_updated=""
apt_install() {  # apt_install WHAT PACKAGE...  installs, or names the command and stops
    local what=$1; shift
    if ! can_apt; then
        die "$what is missing and this user cannot install it; run: sudo apt-get install $*"
    fi
    if [ -z "$apt_updated" ]; then
        "${as_root[@]}" apt-get update -qq || die "apt-get update failed (no network?)"
        apt_updated=1
    fi
    say "  installing $what: apt-get install $*"
    DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq "$@" >/dev/null \
        || die "apt-get install $* failed"
}

fingerprint() {  # what the finished setup was made from; a change re-runs the Python part
    { cat "$ROOT/requirements.txt" "$ROOT/requirements-odoo19.txt" "$0"
      echo "${ODOO_PYTHON:-}|${ODOO_SRC:-}|$("$BASE_PYTHON" -V 2>&1)"; } | sha256sum | cut -c1-16
}

# ---------------------------------------------------------------- system parts
system_parts() {
    if ! "$BASE_PYTHON" -c 'import venv, ensurepip' 2>/dev/null; then
        pyver=$("$BASE_PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])') \
            || die "no $BASE_PYTHON on PATH (set SETUP_PYTHON to a Python 3.10+)"
        apt_install "the venv module of $BASE_PYTHON" "python$pyver-venv"
    fi
    "$BASE_PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || die "$BASE_PYTHON is $("$BASE_PYTHON" -V 2>&1); Odoo 19 needs Python 3.10 or newer (set SETUP_PYTHON)"
    part python "$("$BASE_PYTHON" -V 2>&1) ($(command -v "$BASE_PYTHON"))"

    if [ -z "${ODOO_PYTHON:-}" ]; then  # psycopg2 and python-ldap-free Odoo pins build here
        command -v pg_config >/dev/null || apt_install "libpq headers (psycopg2 builds from source)" libpq-dev
        command -v cc >/dev/null || apt_install "a C compiler (psycopg2 builds from source)" gcc
    fi

    if ! command -v pg_isready >/dev/null && ! command -v psql >/dev/null; then
        apt_install "PostgreSQL" postgresql postgresql-client
    fi
    if ! pg_isready -q -h "$PGHOST" 2>/dev/null; then
        if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
            for v in /etc/postgresql/*/main; do
                v=${v#/etc/postgresql/}; v=${v%/main}
                "${as_root[@]}" pg_ctlcluster --skip-systemctl-redirect "$v" main start 2>/dev/null || true
            done
        fi
        for _ in 1 2 3 4 5 6 7 8 9 10; do pg_isready -q -h "$PGHOST" && break; sleep 1; done
        pg_isready -q -h "$PGHOST" \
            || die "PostgreSQL does not answer on $PGHOST; start it (pg_ctlcluster <version> main start) or set PGHOST"
    fi
    me=$(id -un)
    if ! psql -h "$PGHOST" -d postgres -Atqc 'select 1' >/dev/null 2>&1; then
        if command -v runuser >/dev/null && [ "$(id -u)" -eq 0 ] || [ ${#as_root[@]} -gt 0 ]; then
            "${as_root[@]}" runuser -u postgres -- createuser --createdb "$me" 2>/dev/null || true
        fi
        psql -h "$PGHOST" -d postgres -Atqc 'select 1' >/dev/null 2>&1 \
            || die "PostgreSQL on $PGHOST refuses the role '$me'; run: sudo -u postgres createuser --createdb $me (and allow it in pg_hba.conf, or set PGHOST to the socket directory)"
    fi
    psql -h "$PGHOST" -d postgres -Atqc "select rolcreatedb or rolsuper from pg_roles where rolname = current_user" \
        | grep -q t || die "the PostgreSQL role '$me' cannot create databases; run: sudo -u postgres psql -c 'ALTER ROLE \"$me\" CREATEDB'"
    part postgresql "$(psql -h "$PGHOST" -d postgres -Atqc 'show server_version') on $PGHOST, role $me"

    chromium=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
    if [ -z "$chromium" ]; then
        apt_install "Chromium (browser tours)" chromium
        chromium=$(command -v chromium)
    fi
    part chromium "$("$chromium" --version 2>/dev/null | head -1) ($chromium)"

    # The stage benchmark report prints through wkhtmltopdf (Odoo renders only HTML
    # without it); pdftoppm turns a page into the README's screenshot.
    command -v wkhtmltopdf >/dev/null || apt_install "wkhtmltopdf (PDF reports)" wkhtmltopdf
    command -v pdftoppm >/dev/null || apt_install "pdftoppm (report screenshots)" poppler-utils
    part wkhtmltopdf "$(wkhtmltopdf --version 2>/dev/null | head -1)"
}

# ---------------------------------------------------------------- Odoo 19
odoo_version_of() {  # odoo_version_of DIR  -> version of DIR/odoo/release.py
    "$BASE_PYTHON" - "$1" <<'PY' 2>/dev/null
import pathlib, sys
ns = {}
src = pathlib.Path(sys.argv[1], "odoo", "release.py").read_text()
exec(compile(src, "release.py", "exec"), ns)
print(ns["version"])
PY
}

apt_private() {  # apt_private DIR apt-get|apt-cache ARGS: a private sources list, the system's untouched
    local d=$1 tool=$2; shift 2
    "$tool" -o Dir::Etc::sourcelist="$d/sid.list" -o Dir::Etc::sourceparts=/nonexistent \
        -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Debug::NoLocking=1 \
        -o APT::Sandbox::User="$(id -un)" "$@"
}

debian_mirror() {  # the Debian archive URI the machine's own apt sources already use
    { grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}'
      grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
          | sed -E 's/^deb +(\[[^]]*\] +)?//' | awk '{print $1}'; } 2>/dev/null \
        | grep -E '/debian/?$' | head -1 || true
}

odoo_from_debian() {  # prints the Odoo tree (the dir holding odoo/) or returns 1
    local final="$CACHE/odoo-$ODOO_DEB_VERSION"
    if [ -f "$final/.complete" ]; then
        echo "$final/usr/lib/python3/dist-packages"; return 0
    fi
    local mirror; mirror=$(debian_mirror)
    [ -n "$mirror" ] || die "no Debian mirror in this machine's apt sources; set ODOO_SRC or ODOO_PYTHON"
    local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
    [ -f "$keyring" ] || die "$keyring is missing (apt-get install debian-archive-keyring)"
    say "  fetching Debian's odoo-19=$ODOO_DEB_VERSION from $mirror (sid) into $CACHE" >&2
    mkdir -p "$CACHE"
    rm -rf "$final.partial" "$CACHE/apt"
    local d="$CACHE/apt"
    CLEANUP+=("$d" "$final.partial")
    mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/debs" "$final.partial"
    printf 'deb [signed-by=%s] %s %s main\n' "$keyring" "$mirror" sid "$keyring" "$mirror" "$DEB_LINK_SUITE" \
        >"$d/sid.list"
    # apt-get update exits 0 when a list could not be fetched: look for the lists themselves.
    apt_private "$d" apt-get -qq update >&2 2>"$d/err" || true
    compgen -G "$d/lists/*_sid_main_binary-*_Packages*" >/dev/null \
        && compgen -G "$d/lists/*_${DEB_LINK_SUITE}_main_binary-*_Packages*" >/dev/null \
        || die "could not read Debian's package lists from $mirror (no network? $(grep -m1 -E '^(W|E):' "$d/err"))"
    (cd "$d/debs" && apt_private "$d" apt-get -qq download "odoo-19=$ODOO_DEB_VERSION" >&2 2>"$d/err") \
        || die "Debian no longer serves odoo-19=$ODOO_DEB_VERSION ($(tail -1 "$d/err")); set ODOO_DEB_VERSION to one it has ($(apt_private "$d" apt-cache madison odoo-19 2>/dev/null | awk '{print $3}' | paste -sd' ')), or ODOO_SRC / ODOO_PYTHON"
    local pkg
    for pkg in "${DEB_LINK_TARGETS[@]}"; do  # one at a time: one unknown name fails a batch
        (cd "$d/debs" && { apt_private "$d" apt-get -qq download "$pkg/$DEB_LINK_SUITE" 2>/dev/null \
                             || apt_private "$d" apt-get -qq download "$pkg"; } >&2 2>"$d/err") \
            || die "Debian does not serve $pkg, which Odoo's package links into ($(tail -1 "$d/err"))"
    done
    for deb in "$d"/debs/*.deb; do dpkg-deb -x "$deb" "$final.partial"; done
    local tree="$final.partial/usr/lib/python3/dist-packages"
    local dangling; dangling=$(find "$tree/odoo" -xtype l | head -5)
    [ -z "$dangling" ] || die "links still dangle in Debian's Odoo after unpacking its link targets: $dangling"
    if [ ! -s "$tree/odoo/addons/$SELFIE_FILE" ]; then
        command -v npm >/dev/null || apt_install "npm (restores one file Debian strips from Odoo)" npm
        (cd "$d" && npm pack --silent "$SELFIE_NPM" >/dev/null 2>"$d/err") \
            || die "npm could not fetch $SELFIE_NPM ($(tail -1 "$d/err"))"
        tar -xzf "$d"/mediapipe-selfie_segmentation-*.tgz -C "$d" package/selfie_segmentation.js
        mkdir -p "$(dirname "$tree/odoo/addons/$SELFIE_FILE")"
        cp "$d/package/selfie_segmentation.js" "$tree/odoo/addons/$SELFIE_FILE"
    fi
    rm -rf "$d"
    touch "$final.partial/.complete"
    mv "$final.partial" "$final"
    echo "$final/usr/lib/python3/dist-packages"
}

odoo_from_git() {
    local final="$CACHE/odoo-19.0-git"
    if [ ! -f "$final/.complete" ]; then
        say "  cloning $ODOO_GIT_URL (branch 19.0, shallow) into $CACHE" >&2
        mkdir -p "$CACHE"; rm -rf "$final.partial"
        CLEANUP+=("$final.partial")
        git clone -q --depth 1 --branch 19.0 "$ODOO_GIT_URL" "$final.partial" >&2 \
            || die "git could not clone $ODOO_GIT_URL (no network?); set ODOO_SRC or ODOO_PYTHON"
        touch "$final.partial/.complete"; mv "$final.partial" "$final"
    fi
    echo "$final"
}

odoo_tree() {  # where Odoo 19 comes from, unless ODOO_PYTHON gives it ready-made
    local tree
    if [ -n "${ODOO_SRC:-}" ]; then
        tree=$(cd "$ODOO_SRC" 2>/dev/null && pwd) || die "ODOO_SRC=$ODOO_SRC is not a directory"
        [ -f "$tree/odoo/release.py" ] || die "ODOO_SRC=$ODOO_SRC holds no odoo/release.py (name the directory that holds the odoo package)"
    elif command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null; then
        tree=$(odoo_from_debian)
    elif command -v git >/dev/null; then
        tree=$(odoo_from_git)
    else
        die "no way to get Odoo 19 here: neither apt-get with dpkg-deb nor git; install git, or set ODOO_SRC / ODOO_PYTHON"
    fi
    local v; v=$(odoo_version_of "$tree")
    case "$v" in 19.*) ;; *) die "the Odoo in $tree is '${v:-unreadable}', not 19";; esac
    echo "$tree"
}

# ---------------------------------------------------------------- .venv
python_env() {
    local fp=$1 tree=${2:-} base
    rm -f "$MARKER"
    if [ -x "$VENV/bin/python" ] && ! "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
        rm -rf "$VENV"  # its base Python moved or vanished
    fi
    if [ -n "${ODOO_PYTHON:-}" ]; then
        "$ODOO_PYTHON" -c 'import odoo.release as r, sys; sys.exit(not r.version.startswith("19."))' 2>/dev/null \
            || die "ODOO_PYTHON=$ODOO_PYTHON does not import Odoo 19"
        base=$("$ODOO_PYTHON" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))')
    else
        base=$("$BASE_PYTHON" -c 'import os, sys; print(os.path.realpath(getattr(sys, "_base_executable", sys.executable)))')
    fi
    # A .venv made from another interpreter (another ODOO_PYTHON, a new Python) is remade.
    local made_from; made_from=$("$VENV/bin/python" -c 'import os, sys; print(os.path.realpath(sys._base_executable))' 2>/dev/null || true)
    [ "$made_from" = "$base" ] || { rm -rf "$VENV"; "$base" -m venv "$VENV"; }
    local py=$VENV/bin/python
    "$py" -m pip install -q --disable-pip-version-check --upgrade pip setuptools wheel >/dev/null
    local reqs=(-r "$ROOT/requirements.txt")
    local site; site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    rm -f "$site/do_deploy_odoo.pth"
    if [ -n "${ODOO_PYTHON:-}" ]; then
        # ODOO_PYTHON's own package directories, after .venv's, with their .pth files
        # (an editable Odoo install is one) processed as site directories are.
        "$ODOO_PYTHON" - >"$site/do_deploy_odoo.pth" <<'PY'
import sys
dirs = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
print("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs))
PY
    fi
    if [ -n "$tree" ]; then
        reqs+=(-r "$ROOT/requirements-odoo19.txt")
        # Odoo importable through a directory that holds only a link to the odoo package:
        # the tree's other top-level directories (addons, setup, doc) stay off the path.
        mkdir -p "$VENV/odoo-link"
        ln -sfn "$tree/odoo" "$VENV/odoo-link/odoo"
        echo "$VENV/odoo-link" >"$site/do_deploy_odoo.pth"
    fi
    "$py" -m pip install -q --disable-pip-version-check "${reqs[@]}" 2> >(grep -v "^WARNING: Location 'file:" >&2 || true) \
        || die "pip could not install the Python requirements (see above)"
    local v; v=$("$py" -c 'import odoo.release as r; print(r.version)' 2>/dev/null) || true
    case "$v" in 19.*) ;; *) die "Odoo is not importable from $VENV after setup (got '${v:-nothing}')";; esac
    "$py" - <<'PY' || die "a test tool is not importable from .venv"
import importlib
for name in ("pytest", "pytest_cov", "pytest_odoo", "websocket", "ruff", "pylint_odoo", "psycopg2", "lxml"):
    importlib.import_module(name)
PY
    part odoo "$v from $("$py" -c 'import odoo.release as r, os; print(os.path.dirname(os.path.dirname(os.path.realpath(r.__file__))))')"
    part venv "$VENV ($(du -sh "$VENV" | cut -f1))"
    echo "$fp" >"$MARKER"
}

# ---------------------------------------------------------------- main
say "== make setup"
fp=$(fingerprint)
if [ -f "$MARKER" ] && [ "$(cat "$MARKER")" = "$fp" ] \
    && "$VENV/bin/python" -c 'import odoo.release as r, pytest_odoo, websocket' 2>/dev/null; then
    system_parts
    part odoo "$("$VENV/bin/python" -c 'import odoo.release as r; print(r.version)') (already set up)"
    part venv "$VENV (already set up)"
else
    system_parts
    tree=""
    [ -n "${ODOO_PYTHON:-}" ] || tree=$(odoo_tree)
    python_env "$fp" "$tree"
fi
[ -d "$CACHE" ] && part cache "$CACHE ($(du -sh "$CACHE" 2>/dev/null | cut -f1))"
say "setup done in $(( $(date +%s) - started )) s"
