"""`make setup` as a user meets it: its failures, its repair and a user's own Odoo 19.

Each test runs the real tools/setup.sh on a copy of the project with an empty cache
of its own. They need a Python that imports Odoo 19 (the one running them, as the
test command does from .venv) and the network to Debian's archive and PyPI.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ("tools/setup.sh", "requirements.txt", "requirements-odoo19.txt")
# Commands whose absence leaves setup no way to fetch Odoo.
ODOO_FETCHERS = {"apt-get", "dpkg-deb", "git"}
CLOSED_PORT_PROXY = "http://127.0.0.1:9"


@pytest.fixture
def project(tmp_path):
    for name in PROJECT_FILES:
        target = tmp_path / "project" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)
    return tmp_path / "project"


@pytest.fixture
def env(tmp_path):
    base_python = os.path.realpath(getattr(sys, "_base_executable", sys.executable))
    return {**os.environ, "DO_DEPLOY_CACHE": str(tmp_path / "cache"), "SETUP_PYTHON": base_python}


def run_setup(project, env, **extra):
    return subprocess.run(
        ["bash", str(project / "tools/setup.sh")], env={**env, **extra},
        capture_output=True, text=True, timeout=900, check=False)


def failure_lines(result):
    return [line for line in result.stderr.splitlines() if "make setup FAILED" in line]


def assert_failed_once(result, sentence):
    """A non-zero exit, and one clear sentence that says what is wrong."""
    assert result.returncode != 0, result.stdout
    lines = failure_lines(result)
    assert len(lines) == 1, result.stderr
    assert sentence in lines[0], lines[0]


def assert_nothing_trusted(project, env):
    assert not (project / ".venv/.setup-complete").exists()
    assert not list(Path(env["DO_DEPLOY_CACHE"]).glob("odoo-*/.complete"))


def path_without(tmp_path, hidden):
    """A PATH with every command of the current one except ``hidden``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for name in os.listdir(directory):
            link = bin_dir / name
            if name not in hidden and not link.exists():
                link.symlink_to(os.path.join(directory, name))
    return str(bin_dir)


def test_no_apt_and_no_git_fails_with_one_sentence(project, env, tmp_path):
    result = run_setup(project, env, PATH=path_without(tmp_path, ODOO_FETCHERS))
    assert_failed_once(result, "no way to get Odoo 19 here")
    assert "set ODOO_SRC / ODOO_PYTHON" in failure_lines(result)[0]
    assert_nothing_trusted(project, env)


def test_a_pinned_debian_version_that_is_gone_is_named(project, env):
    result = run_setup(project, env, ODOO_DEB_VERSION="19.0.0+dfsg-0")
    assert_failed_once(result, "Debian no longer serves odoo-19=19.0.0+dfsg-0")
    assert "19.0.0+dfsg-1" in failure_lines(result)[0]  # the version it does serve
    assert_nothing_trusted(project, env)


def test_no_network_fails_and_leaves_nothing_half_done(project, env):
    result = run_setup(project, env, http_proxy=CLOSED_PORT_PROXY, https_proxy=CLOSED_PORT_PROXY)
    assert_failed_once(result, "could not read Debian's package lists")
    assert_nothing_trusted(project, env)
    assert not list(Path(env["DO_DEPLOY_CACHE"]).glob("odoo-*"))


def test_odoo_src_that_is_not_odoo_is_refused(project, env, tmp_path):
    result = run_setup(project, env, ODOO_SRC=str(tmp_path))
    assert_failed_once(result, "holds no odoo/release.py")
    assert_nothing_trusted(project, env)


def test_the_users_odoo_is_used_and_a_failed_run_is_repaired(project, env):
    """ODOO_PYTHON downloads no Odoo; a run that fails is not trusted, the next repairs."""
    odoo_python = sys.executable  # the test command runs these from a Python with Odoo 19
    broken = project / "requirements.txt"
    good = broken.read_text()
    broken.write_text(good + "requests==0.0.0\n")  # a pin no index can satisfy

    failed = run_setup(project, env, ODOO_PYTHON=odoo_python)
    assert_failed_once(failed, "pip could not install the Python requirements")
    assert_nothing_trusted(project, env)

    broken.write_text(good)
    repaired = run_setup(project, env, ODOO_PYTHON=odoo_python)
    assert repaired.returncode == 0, repaired.stderr
    assert not failure_lines(repaired), repaired.stderr
    assert (project / ".venv/.setup-complete").exists()
    assert not Path(env["DO_DEPLOY_CACHE"]).exists()  # nothing fetched: no Odoo, no .deb
    version = subprocess.run(
        [str(project / ".venv/bin/python"), "-c", "import odoo.release as r; print(r.version)"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert version.startswith("19.")

    again = run_setup(project, env, ODOO_PYTHON=odoo_python)
    assert again.returncode == 0
    assert "(already set up)" in again.stdout
