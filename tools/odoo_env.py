"""Open an Odoo 19 environment on a database from a plain script (no server).

Used by tools/generate_history.py and benchmarks/bench_history.py; run as a
script it prints Odoo's own addons path for the shell tools. The addon
directory may have any name on disk; Odoo needs it to be called ``do_deploy``,
so a temporary addons directory with a symlink is made when it is not.
"""

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parent.parent


def core_addons_path():
    """Odoo's own addons directories, for a git checkout and a packaged tree alike.

    A git checkout keeps web, mail and project in a top-level ``addons`` beside the
    ``odoo`` package; Debian's package has all of them inside ``odoo/addons`` and a
    stray top-level ``addons`` that must stay off the path.
    """
    import odoo.release

    # odoo may be a namespace package (editable install): odoo.__file__ is None then.
    package = Path(odoo.release.__file__).resolve().parent
    paths = [str(package / "addons")]
    if not (package / "addons" / "web").is_dir():
        paths.insert(0, str(package.parent / "addons"))
    return ",".join(paths)


def addons_path():
    """Odoo's addons and a directory holding this addon under the name do_deploy."""
    paths = [os.environ.get("ADDONS_PATH") or core_addons_path()]
    if ADDON_DIR.name == "do_deploy":
        paths.append(str(ADDON_DIR.parent))
    else:
        link_dir = tempfile.mkdtemp(prefix="do_deploy_addons_")
        atexit.register(shutil.rmtree, link_dir, ignore_errors=True)
        os.symlink(ADDON_DIR, Path(link_dir, "do_deploy"))
        paths.append(link_dir)
    return ",".join(paths)


@contextlib.contextmanager
def odoo_env(db, db_host=None):
    """Yield a superuser environment on ``db``; commit on success."""
    from odoo import SUPERUSER_ID, api
    from odoo.modules.registry import Registry
    from odoo.tools import config

    args = ["-d", db, f"--addons-path={addons_path()}"]
    host = db_host or os.environ.get("PGHOST")
    if host:
        args.append(f"--db_host={host}")
    config.parse_config(args)
    registry = Registry(db)
    with registry.cursor() as cr:
        yield api.Environment(cr, SUPERUSER_ID, {})


if __name__ == "__main__":  # the shell tools ask for Odoo's addons path this way
    print(core_addons_path())
