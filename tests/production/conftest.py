"""Fixtures of the production tests: the local Redis, as the multi-process tests find it."""

from tests.multiprocess.conftest import redis_url  # noqa: F401 - a fixture, shared
