"""``python -m loadtest <command>``: load tests against a hub on this machine."""

from __future__ import annotations

import argparse
import asyncio
import sys

from loadtest import bench_holds, bench_reads, fanout, surge


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtest")
    commands = parser.add_subparsers(dest="command", required=True)
    fanout.add_arguments(commands.add_parser("fanout", help="WebSocket fan-out benchmark"))
    surge.add_arguments(commands.add_parser("surge", help="booking surge, audit and ceiling"))
    bench_holds.add_arguments(
        commands.add_parser("bench-holds", help="hold path: the ceiling and the hub, side by side")
    )
    bench_reads.add_arguments(
        commands.add_parser("bench-reads", help="event read: a bare handler and the hub")
    )
    args = parser.parse_args(argv)
    if args.command == "surge":
        return surge.run(args)
    if args.command == "bench-holds":
        return bench_holds.run(args)
    if args.command == "bench-reads":
        return bench_reads.run(args)
    if args.command == "fanout":
        return asyncio.run(fanout.run(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
