"""``python -m bench`` (``make bench``): every benchmark in this folder, one after the other.

A benchmark is a module here with ``main(argv)``; one whose docstring offers
``--write-readme`` is asked to put its results into bench/README.md.
"""

from __future__ import annotations

import importlib
import pkgutil

import bench


def main() -> None:
    for info in sorted(pkgutil.iter_modules(bench.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"bench.{info.name}")
        if hasattr(module, "main"):
            module.main(["--write-readme"] if "--write-readme" in (module.__doc__ or "") else [])


if __name__ == "__main__":
    main()
