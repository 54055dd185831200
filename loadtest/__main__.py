"""``python -m loadtest <command>``: load tests against a hub on this machine."""

from __future__ import annotations

import argparse
import asyncio
import sys

from loadtest import bench_holds, bench_reads, fanout, soak, surge


def parser() -> argparse.ArgumentParser:
    """Every command and flag; each flag's help shows its default."""
    main_parser = argparse.ArgumentParser(prog="python -m loadtest")
    commands = main_parser.add_subparsers(dest="command", required=True)

    def command(name: str, help: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name, help=help, formatter_class=argparse.ArgumentDefaultsHelpFormatter
        )

    fanout.add_arguments(command("fanout", "WebSocket fan-out benchmark"))
    surge.add_arguments(command("surge", "booking surge, audit and ceiling"))
    bench_holds.add_arguments(command("bench-holds", "hold path: the ceiling and the hub"))
    bench_reads.add_arguments(command("bench-reads", "event read: a bare handler and the hub"))
    soak.add_arguments(command("soak", "mixed load under rotating faults, invariants each minute"))
    return main_parser


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "surge":
        return surge.run(args)
    if args.command == "bench-holds":
        return bench_holds.run(args)
    if args.command == "bench-reads":
        return bench_reads.run(args)
    if args.command == "soak":
        return soak.run(args)
    if args.command == "fanout":
        return asyncio.run(fanout.run(args))
    return 2


if __name__ == "__main__":
    sys.exit(main())
