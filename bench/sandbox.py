"""`python -m bench.sandbox --port N --faults JSON`: the Stripe sandbox in its own process, metered.

The meter (bench.stripe_meter) answers `GET /_bench/meter` (and `DELETE` to start counting afresh).
"""

import argparse
import json

from stripe_sandbox.server import SandboxServer

from .stripe_meter import StripeMeter


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.sandbox")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--faults", default="{}")
    parser.add_argument("--seed", type=int, default=6)
    args = parser.parse_args(argv)
    server = SandboxServer(
        port=args.port, faults=json.loads(args.faults), seed=args.seed, webhook_retry_base=1.0, webhook_max_attempts=3
    )
    server.app.wsgi_app = StripeMeter(server.app.wsgi_app)
    print(f"metered stripe sandbox on {server.url}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
