"""The installation's own session-signing key, for a store started without SECRET_KEY outside production.

Random, generated on the first start and kept in the instance folder (never in the repository), read
again on every later start, so sessions survive restarts and every process of one installation (the web
server, `flask worker`) signs with the same key.
"""

import logging
import os
import secrets
from pathlib import Path

from .config import PUBLISHED_SECRET_KEYS

FILE_NAME = "secret_key"
MIN_LENGTH = 32

log = logging.getLogger(__name__)


def installation_secret(instance_path):
    """The key kept in `instance_path`, created there (random, mode 0600) if there is none yet."""
    path = Path(instance_path) / FILE_NAME
    if path.exists():
        return _read(path)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    return _create(path)


def _create(path):
    """Write a new key under a temporary name, then link it into place: two processes starting at once
    never read half a key, and the one that links second reads the first one's key."""
    spare = path.with_name(f".{FILE_NAME}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(spare, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(32) + "\n")
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(spare, path)
            log.info("generated this installation's SECRET_KEY in %s", path)
        except FileExistsError:
            pass  # another process of this installation was first: its key is the key
    finally:
        spare.unlink(missing_ok=True)
    return _read(path)


def _read(path):
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < MIN_LENGTH or key in PUBLISHED_SECRET_KEYS:
        raise RuntimeError(f"{path} holds no usable key (published, or under {MIN_LENGTH} characters): delete it")
    if path.stat().st_mode & 0o077:
        log.warning("%s is readable by other users: chmod 600 it (anyone who reads it can sign sessions)", path)
    return key
