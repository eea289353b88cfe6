"""python -m tests.lab up [--targets SPEC] [--deploy SUITE] | down [--engine] | status

up      bring up deploy1 and node1..nodeN; the inventory's path is the last line.
        SPEC is a count of bookworm-docker nodes (default 3) or PROFILE:COUNT,... in order,
        e.g. bookworm-docker:2,trixie-docker:1,trixie-podman:1. Profiles: {profiles}.
        --deploy: the deployment host's Debian suite ({suites}; bookworm by default), without Docker
        --s3: also store1, a SeaweedFS S3 store (10.77.0.6); --replicas K (needs --s3): also
        replica1..replicaK registry hosts; the inventory then has registry.storage.s3,
        registry.hostname and registry.replicas (see tests/lab/store.py)
down    remove the lab's hosts and network, keep its images (--engine: stop its dockerd too)
status  the lab's hosts: name, state, address

State lives in /var/lib/kolla-registry-lab, or $KOLLA_LAB_ROOT.
"""

import argparse
import sys

from . import down, status, up
from .config import DEPLOY_PROFILES, TARGET_PROFILES, paths
from .engine import engine_running
from .errors import LabError
from .lock import lab_lock
from .store import up_replicas


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "status":
            _print_status()
            return 0
        # up and down add, replace and remove hosts: never under a test session or a benchmark.
        with lab_lock():
            _change(args)
    except LabError as error:
        print(f"lab: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("lab: interrupted: run `python -m tests.lab up` again to finish", file=sys.stderr)
        return 130
    return 0


def _change(args: argparse.Namespace) -> None:
    if args.command == "up":
        if args.replicas and not args.s3:
            raise LabError("--replicas needs --s3: replicas share one store")
        inventory = up(args.targets, args.deploy)
        print(up_replicas(args.replicas) if args.s3 else inventory)
    else:
        down(engine=args.engine)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tests.lab",
        description=__doc__.format(profiles=", ".join(TARGET_PROFILES), suites=", ".join(DEPLOY_PROFILES)),
        formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up_parser = commands.add_parser("up", help="bring the lab up (or repair it)")
    up_parser.add_argument("--targets", default="3", help="a count, or PROFILE:COUNT,... (default 3)")
    up_parser.add_argument("--deploy", default="bookworm", help="the deployment host's suite (bookworm, trixie)")
    up_parser.add_argument("--replicas", type=int, default=0, help="replica registry hosts (needs --s3)")
    up_parser.add_argument("--s3", action="store_true", help="an S3 store host for the registry")
    down_parser = commands.add_parser("down", help="remove the lab's hosts, keep its images")
    down_parser.add_argument("--engine", action="store_true", help="also stop the lab's dockerd")
    commands.add_parser("status", help="list the lab's hosts")
    return parser


def _print_status() -> None:
    rows = status()
    if not rows:
        engine = "" if engine_running() else f": the lab's engine is not running ({paths().socket})"
        print(f"no lab hosts{engine}")
        return
    for row in rows:
        print(f"{row.name:<10} {row.state:<10} {row.ip:<15} {row.profile}")
    inventory = paths().inventory
    print(f"inventory: {inventory if inventory.exists() else 'none (run up)'}")


if __name__ == "__main__":
    sys.exit(main())
