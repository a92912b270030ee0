"""``python -m pipeline.localaws [--port N] [--scenario PATH]``: run the local AWS until stopped."""

from __future__ import annotations

import argparse
import sys

from pipeline.errors import PipelineError
from pipeline.localaws.serve import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.localaws", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: a free port)")
    parser.add_argument("--scenario", default=None, help="scenario file (YAML or JSON)")
    args = parser.parse_args(argv)
    try:
        serve(args.port, args.scenario, lambda line: print(line, flush=True))
    except PipelineError as err:
        for line in err.lines():
            print(line, file=sys.stderr)
        return int(err.exit_code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
