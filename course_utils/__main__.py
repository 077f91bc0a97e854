"""The course's command line: ``python -m course_utils fetch|doctor`` (chapter 1)."""

from __future__ import annotations

import argparse
import sys

from .assets import AssetError, fetch_all
from .doctor import doctor


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_utils", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser("fetch", help="download, verify and cache every model and data set")
    fetch.add_argument("--force", action="store_true", help="fetch again even if cached")
    fetch.add_argument(
        "--verify", action="store_true", help="hash every cached file again; refetch what differs"
    )
    commands.add_parser("doctor", help="check Python, packages, device, assets and disk")
    args = parser.parse_args(argv)
    if args.command == "fetch":
        try:
            fetch_all(force=args.force, verify=args.verify)
        except AssetError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        return 0
    return doctor()


if __name__ == "__main__":
    sys.exit(main())
