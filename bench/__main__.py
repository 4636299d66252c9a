"""Run every benchmark module (bench/bench_*.py), each printing its own table."""

from __future__ import annotations

import importlib
import pkgutil
import sys

import bench


def main() -> int:
    names = sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_")
    )
    if not names:
        sys.stdout.write("No benchmarks yet: later issues add bench/bench_*.py modules.\n")
        return 0
    for name in names:
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
