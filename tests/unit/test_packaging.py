"""The lock files and pyproject.toml agree with the tree: locked lines hashed, pins locked, packages shipped."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCKS = {"requirements.lock": "requirements.txt", "requirements-dev.lock": "requirements-dev.txt"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")


def canonical(name):
    """A distribution name as PyPI compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def lock_entries(lock):
    """Each requirement of a pip lock file, as pip reads it: (the line, with its continuations joined; its hashes)."""
    text = re.sub(r"\\\n", " ", (ROOT / lock).read_text())
    lines = [line.split(" #", 1)[0].strip() for line in text.splitlines()]
    return [(line, re.findall(r"--hash=(\S+)", line)) for line in lines if line and not line.startswith("#")]


def locked_versions(lock):
    """{canonical name: versions} in a lock (a universal lock may hold two versions split by markers)."""
    versions = {}
    for match in filter(None, (PIN.match(line) for line, _hashes in lock_entries(lock))):
        versions.setdefault(canonical(match[1]), set()).add(match[2])
    return versions


def pins(requirements):
    """{canonical name: version} of a hand-edited requirements file, following `-r` includes."""
    found = {}
    for line in (ROOT / requirements).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found.update(pins(line[3:].strip()))
        elif line:
            match = PIN.match(line)
            assert match, f"{requirements}: {line!r} is not pinned with =="
            found[canonical(match[1])] = match[2]
    return found


@pytest.mark.parametrize("lock", LOCKS)
def test_every_line_of_the_lock_is_pinned_and_hashed(lock):
    entries = lock_entries(lock)
    assert len(entries) > 20
    for line, hashes in entries:
        assert PIN.match(line), f"{lock}: {line!r} is not pinned with =="
        assert hashes and all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), f"{lock}: {line}"


@pytest.mark.parametrize(("lock", "requirements"), LOCKS.items())
def test_the_lock_holds_every_pin_of_its_requirements(lock, requirements):
    locked = locked_versions(lock)
    missing = {name: version for name, version in pins(requirements).items() if version not in locked.get(name, ())}
    assert not missing, f"compile {lock} again (README, Dependencies): {missing}"


def test_tests_run_the_versions_a_deployment_installs():
    runtime, dev = locked_versions("requirements.lock"), locked_versions("requirements-dev.lock")
    assert {name: dev.get(name) for name in runtime} == runtime


def test_pyproject_ships_every_package_and_the_data_folders():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("storefront", "stripe_sandbox")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert packages <= set(setuptools["packages"])
    for package, folder in setuptools["package-dir"].items():
        assert package in setuptools["packages"] and (ROOT / folder).is_dir()
    assert {"storefront.templates", "storefront.static", "storefront.migrations"} <= set(setuptools["package-dir"])
