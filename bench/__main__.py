"""``python -m bench``: every benchmark, each writing its section of bench/README.md."""

from __future__ import annotations

import importlib

#: Benchmark modules, each with ``main(argv)``.
MODULES = ("bench.frames", "bench.export")


def main() -> None:
    for name in MODULES:
        module = importlib.import_module(name)
        module.main(["--write-readme"] if name == "bench.frames" else [])


if __name__ == "__main__":
    main()
