"""The shipped systemd units (deploy/systemd): valid for systemd (`systemd-analyze verify`, which also
checks that every ExecStart program exists), ordered after the one-shot migration, the worker restarted
always, and running the very commands the supervisord test runs (deploy/supervisor/storefront.conf)."""

import configparser
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bench.stack import ROOT, production_args
from storefront.schema import UPGRADE_COMMAND

UNITS = ROOT / "deploy" / "systemd"
SUPERVISOR_CONF = ROOT / "deploy" / "supervisor" / "storefront.conf"
BIN = Path(sys.executable).parent
VENV = "/opt/storefront/.venv/bin/"


def parse(path):
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # systemd's keys are case-sensitive
    parser.read(path)
    return parser


def exec_start(unit):
    """The unit's command as arguments, the virtualenv's path taken off the program."""
    command = shlex.split(parse(UNITS / unit)["Service"]["ExecStart"])
    assert command[0].startswith(VENV), command
    return [command[0][len(VENV) :], *command[1:]]


def supervisor_command(program):
    """A supervisord program's command without the with-env wrapper and its settings file."""
    command = shlex.split(parse(SUPERVISOR_CONF)[f"program:{program}"]["command"])
    assert command[0].endswith("/deploy/supervisor/with-env") and command[2].startswith(VENV), command
    return [command[2][len(VENV) :], *command[3:]]


def test_the_units_run_the_commands_the_supervisord_test_runs():
    assert exec_start("storefront-migrate.service") == shlex.split(UPGRADE_COMMAND)
    assert exec_start("storefront-migrate.service") == supervisor_command("storefront-migrate")
    assert exec_start("storefront-worker.service") == ["flask", "--app", "storefront", "worker"]
    assert exec_start("storefront-worker.service") == supervisor_command("storefront-worker")
    # The production command the multi-process tests run, on the instance's port.
    assert exec_start("storefront-web@.service") == ["gunicorn", *production_args("127.0.0.1:%i")]
    assert supervisor_command("storefront-web") == ["gunicorn", *production_args("127.0.0.1:50%(process_num)02d")]


def test_web_and_worker_start_only_after_the_migration_and_are_restarted():
    migrate = parse(UNITS / "storefront-migrate.service")
    assert migrate["Service"]["Type"] == "oneshot"
    for unit in ("storefront-web@.service", "storefront-worker.service"):
        parsed = parse(UNITS / unit)
        assert "storefront-migrate.service" in parsed["Unit"]["Requires"].split()
        assert "storefront-migrate.service" in parsed["Unit"]["After"].split()
        assert parsed["Service"]["Restart"] == "always"
        assert parsed["Unit"]["StartLimitIntervalSec"] == "0"  # never gives up restarting
    for program in ("storefront-web", "storefront-worker"):
        section = parse(SUPERVISOR_CONF)[f"program:{program}"]
        assert (section["autostart"], section["autorestart"]) == ("false", "true")  # storefront-release starts them


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verifies_the_units(tmp_path):
    for unit in UNITS.glob("*.service"):
        text = unit.read_text().replace(VENV, f"{BIN}/").replace("/opt/storefront", str(ROOT))
        (tmp_path / unit.name).write_text(text)
    names = ["storefront-migrate.service", "storefront-worker.service", "storefront-web@5001.service"]
    result = subprocess.run(
        ["systemd-analyze", "verify", *(str(tmp_path / name) for name in names)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Non-zero on a missing program; an unknown or misspelt key is only a warning, so none may be printed.
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr
