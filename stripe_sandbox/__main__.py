"""`python -m stripe_sandbox --port 12111 ...`: run the sandbox in the foreground."""

from __future__ import annotations

import argparse
import json
import os
import sys

from .server import PortUnavailable, SandboxServer

DEFAULT_WEBHOOK_SECRET = "whsec_sandbox"


def _env(name: str, default=None):
    return os.environ.get("STRIPE_SANDBOX_" + name, default)


def _env_list(name: str) -> list[str]:
    value = _env(name, "")
    return [part.strip() for part in value.split(",") if part.strip()]


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stripe_sandbox", description="Offline Stripe API sandbox.")
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(_env("PORT", "12111")))
    parser.add_argument("--secret-key", default=_env("SECRET_KEY", "sk_test_sandbox"))
    parser.add_argument("--publishable-key", default=_env("PUBLISHABLE_KEY", "pk_test_sandbox"))
    parser.add_argument(
        "--webhook-url", action="append", default=None, help="repeatable; pairs with --webhook-secret in order"
    )
    parser.add_argument("--webhook-secret", action="append", default=None)
    parser.add_argument("--sepa-delay", type=float, default=float(_env("SEPA_DELAY", "3")))
    parser.add_argument("--dispute-delay", type=float, default=float(_env("DISPUTE_DELAY", "1")))
    parser.add_argument("--refund-failure-delay", type=float, default=float(_env("REFUND_FAILURE_DELAY", "1")))
    parser.add_argument("--webhook-retry-base", type=float, default=float(_env("WEBHOOK_RETRY_BASE", "1")))
    parser.add_argument("--webhook-max-attempts", type=int, default=int(_env("WEBHOOK_MAX_ATTEMPTS", "6")))
    parser.add_argument(
        "--faults", default=_env("FAULTS", ""), help='JSON, e.g. \'{"latency": {"median_ms": 80, "p99_ms": 400}}\''
    )
    parser.add_argument("--seed", type=int, default=_env("SEED"))
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser.parse_args(argv)


def webhooks_from(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Pair webhook URLs with secrets (flags win over env; one secret may serve all URLs)."""
    urls = args.webhook_url or _env_list("WEBHOOK_URL")
    secrets = args.webhook_secret or _env_list("WEBHOOK_SECRET") or [DEFAULT_WEBHOOK_SECRET]
    if len(secrets) not in (1, len(urls)):
        sys.exit("give one --webhook-secret, or one per --webhook-url")
    return [(url, secrets[i] if len(secrets) > 1 else secrets[0]) for i, url in enumerate(urls)]


def main(argv=None) -> None:
    args = parse_args(argv)
    try:
        faults = json.loads(args.faults) if args.faults else {}
    except json.JSONDecodeError as exc:
        sys.exit(f"--faults is not valid JSON: {exc}")
    try:
        server = SandboxServer(
            port=args.port,
            host=args.host,
            quiet=args.quiet,
            secret_key=args.secret_key,
            publishable_key=args.publishable_key,
            webhooks=webhooks_from(args),
            sepa_delay=args.sepa_delay,
            dispute_delay=args.dispute_delay,
            refund_failure_delay=args.refund_failure_delay,
            webhook_retry_base=args.webhook_retry_base,
            webhook_max_attempts=args.webhook_max_attempts,
            faults=faults,
            seed=None if args.seed is None else int(args.seed),
        )
    except PortUnavailable as exc:
        sys.exit(exc.strerror)  # exit status 1, the message on stderr
    print(f"stripe sandbox listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
