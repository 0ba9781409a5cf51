"""The one progress bar: a tqdm bar that appears only once work is big enough to watch.

Small reads and exports print nothing; past :data:`ROWS` rows (or :data:`BYTES` bytes) a bar
appears, on stderr in a terminal and as a widget in Jupyter (``tqdm.auto``). tqdm is imported
only when a bar is shown.
"""

from __future__ import annotations

import typing as t

#: Rows after which a bar appears.
ROWS = 100_000
#: Bytes after which a bar appears (exports counted in bytes, such as PostgreSQL's COPY).
BYTES = 8 * 1024 * 1024

Unit = t.Literal["rows", "B"]


class LazyProgress:
    """Counts rows (or bytes) and shows a tqdm bar once past the threshold.

    Use as a context manager, or call :meth:`close`; :meth:`reset` starts the count again (a
    read that falls back to another route).
    """

    def __init__(self, description: str = "reading", *, enabled: bool = True, unit: Unit = "rows") -> None:
        self.description = description
        self.enabled = enabled
        self.bytes = unit == "B"
        self.threshold = BYTES if self.bytes else ROWS
        self.count = 0
        self._bar: t.Any = None

    def update(self, n: int) -> None:
        self.count += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.enabled and self.count > self.threshold:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                desc=self.description, unit="B" if self.bytes else " rows", unit_scale=True,
                unit_divisor=1024 if self.bytes else 1000, initial=self.count, leave=False,
            )

    def reset(self) -> None:
        self.count = 0
        if self._bar is not None:
            self._bar.reset()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
