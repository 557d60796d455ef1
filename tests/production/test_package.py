"""The wheel works on its own: installed into a fresh venv, run from outside the checkout, it migrates and serves.

The venv sees the test environment's packages through a .pth file (so nothing is downloaded) but not the
checkout: no PYTHONPATH, and the commands run in a directory of their own. `python -m flask` is the venv's
`flask` (the venv has no flask script of its own: Flask is one of the borrowed packages). The wheel is built with the
setuptools requirements-dev.txt pins (no build isolation: no download either).
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
# What a build must not see: caches, local state and earlier builds (a stale build/ would hide a missing file).
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "instance", "*.sqlite3", "node_modules", ".*cache"
)
SERVE = """
import json
from storefront import create_app
client = create_app().test_client()
answers = {path: client.get(path) for path in ("/", "/cart", "/static/js/cart.js", "/api/products")}
print(json.dumps({path: [r.status_code, r.get_data(as_text=True)] for path, r in answers.items()}))
"""


def run(command, cwd, env, timeout=180):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv holding only the built wheel, plus a .pth to this environment's dependencies."""
    tmp = tmp_path_factory.mktemp("package")
    source, dist, prefix = tmp / "source", tmp / "dist", tmp / "venv"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", dist, source]
    run(command, tmp, env, timeout=300)
    (wheel,) = dist.glob("storefront-*.whl")
    venv.create(prefix, with_pip=True)
    python = prefix / "bin" / "python"
    site = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp, env).strip()
    deps = {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}
    Path(site, "test-environment.pth").write_text("\n".join(sorted(deps)) + "\n")
    run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel], tmp, env)
    return prefix, Path(site)


@pytest.fixture
def outside(installed, tmp_path):
    """The environment and working directory of an operator's shell, away from the checkout."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(
        DATABASE_URL=f"sqlite:///{tmp_path / 'store.sqlite3'}",
        INSTANCE_PATH=str(tmp_path / "instance"),
        STOREFRONT_ENV="development",
        PATH=f"{installed[0] / 'bin'}{os.pathsep}{env['PATH']}",
    )
    for name in ("STRIPE_SECRET_KEY", "SOCKETIO_MESSAGE_QUEUE", "RATELIMIT_STORAGE_URI", "WORKER"):
        env.pop(name, None)
    return env, tmp_path


def shipped(folder):
    """The files under a folder, as relative paths."""
    return {path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()}


def source_files(folder):
    """The files under a checkout's folder, less what running it leaves (bytecode)."""
    return {path for path in shipped(folder) if "__pycache__" not in path}


def test_the_wheel_ships_the_code_templates_static_files_and_migrations(installed):
    _prefix, site = installed
    package = site / "storefront"
    for name in ("templates", "static", "migrations"):
        assert shipped(package / name) >= source_files(ROOT / name), name
    for top in ("storefront", "stripe_sandbox"):
        modules = {path for path in source_files(ROOT / top) if path.endswith(".py")}
        assert modules <= shipped(site / top), top
    assert (site / "stripe_sandbox" / "static" / "stripe.js").is_file()


def test_flask_db_upgrade_from_the_installed_package_creates_the_schema(outside):
    env, cwd = outside
    where = run(["python", "-c", "import storefront; print(storefront.__file__, storefront.MIGRATIONS)"], cwd, env)
    assert str(ROOT) not in where and "site-packages" in where
    run(["python", "-m", "flask", "--app", "storefront", "db", "upgrade"], cwd, env)
    heads = run(["python", "-m", "flask", "--app", "storefront", "db", "heads"], cwd, env).split()[0]
    with sqlite3.connect(cwd / "store.sqlite3") as conn:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        (version,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    assert {"carts", "products", "orders"} <= tables
    assert version == heads
    commands = run(["storefront", "--help"], cwd, env)
    for name in ("db", "worker", "reconcile", "cleanup-carts"):
        assert f"  {name} " in commands


def test_the_installed_app_serves_pages_and_static_files(outside):
    env, cwd = outside
    run(["python", "-m", "flask", "--app", "storefront", "db", "upgrade"], cwd, env)
    answers = json.loads(run(["python", "-c", SERVE], cwd, env))
    assert {path: status for path, (status, _body) in answers.items()} == dict.fromkeys(answers, 200)
    assert "Harbour Coffee Co." in answers["/"][1]  # templates/base.html, rendered
    assert "js/cart.js" in answers["/cart"][1]
    assert answers["/static/js/cart.js"][1] == (ROOT / "static/js/cart.js").read_text()
    assert json.loads(answers["/api/products"][1])  # the seeded catalog, in the migrated database
