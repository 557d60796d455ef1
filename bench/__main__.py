"""`python -m bench --profile quick|full|smoke [--out FILE]`: run the benchmark, print and write the table."""

import argparse
import asyncio
import json
import resource
import sys
import tempfile
from pathlib import Path

from .profiles import PROFILES
from .report import markdown
from .run import run

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    parser.add_argument("--out", default=str(RESULTS / "latest.md"), help="markdown table (raw numbers: .json)")
    parser.add_argument("--render", action="store_true", help="only rewrite the table from the .json next to --out")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.render:
        text = markdown(json.loads(out.with_suffix(".json").read_text()))
        out.write_text(text)
        print(text)
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 65536)), hard))  # children inherit it
    logs = tempfile.mkdtemp(prefix="bench-logs-")
    try:
        text = asyncio.run(run(PROFILES[args.profile], out, out.parent, logs))
    except BaseException:
        print(f"benchmark failed; process logs are in {logs}", file=sys.stderr)
        raise
    print(text)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
