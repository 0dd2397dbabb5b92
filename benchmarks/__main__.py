"""`make bench`: run every benchmark; each writes benchmarks/results/<name>.json."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main() -> None:
    only = set(sys.argv[1:])
    here = Path(__file__).resolve().parent
    for mod in sorted(
        m.name for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_")
    ):
        if only and mod.removeprefix("bench_") not in only and mod not in only:
            continue
        print(f"== {mod}", file=sys.stderr)
        importlib.import_module(f"benchmarks.{mod}").main()


if __name__ == "__main__":
    main()
