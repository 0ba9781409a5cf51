"""The versions of the libraries the toolkit supports, checked when ``analysis`` is imported.

The ranges are pyproject.toml's (``make test`` runs the suite at their lower ends too, from
constraints-lowest.txt; tests/test_versions.py keeps the three in step). Only the lower end is
enforced here: an older Flask-SQLAlchemy fails in ways that name private internals (2.x imports
a name Flask 3 removed), while a release newer than the range usually works, and pip already
keeps it out unless asked.
"""

from __future__ import annotations

import re
from importlib.metadata import PackageNotFoundError, version

from .errors import UnsupportedVersionError

#: Distribution name -> (how its project spells it, the supported range as in pyproject.toml).
SUPPORTED: dict[str, tuple[str, str]] = {
    "flask": ("Flask", ">=3.0,<3.2"),
    "flask-sqlalchemy": ("Flask-SQLAlchemy", ">=3.0.3,<3.2"),
    "sqlalchemy": ("SQLAlchemy", ">=2.0.16,<2.2"),
    "pandas": ("pandas", ">=2.2,<4"),
    "pyarrow": ("pyarrow", ">=17"),
}


def check_installed() -> None:
    """Raise :class:`UnsupportedVersionError` naming every library installed below its range.

    A library that is not installed at all is left to fail where it is imported.
    """
    too_old = []
    for distribution, (name, supported) in SUPPORTED.items():
        try:
            found = version(distribution)
        except PackageNotFoundError:
            continue
        if release(found) < release(lowest(supported)):
            too_old.append((distribution, name, found, supported))
    if too_old:
        needs = ", ".join(f"{name} {supported}" for _, name, _, supported in too_old)
        found_text = ", ".join(f"{name} {found}" for _, name, found, _ in too_old)
        pins = " ".join(f"'{distribution}{supported}'" for distribution, _, _, supported in too_old)
        raise UnsupportedVersionError(
            f"analysis needs {needs}, but {found_text} {'is' if len(too_old) == 1 else 'are'} installed."
            f" Upgrade: pip install {pins}"
        )


def lowest(supported: str) -> str:
    """``">=3.0.3,<3.2"`` -> ``"3.0.3"``."""
    match = re.search(r">=\s*([0-9][^,\s]*)", supported)
    if match is None:
        raise ValueError(f"no lower bound in {supported!r}")
    return match.group(1)


def release(text: str) -> tuple[int, ...]:
    """The numeric release of a version, for ordering: ``"2.0.16"`` -> ``(2, 0, 16)``,
    ``"3.1.0rc1"`` -> ``(3, 1)``; ``"3.0"`` equals ``"3.0.0"``."""
    match = re.match(r"\d+(?:\.\d+)*", text.strip())
    numbers = [int(part) for part in match.group(0).split(".")] if match else [0]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)
