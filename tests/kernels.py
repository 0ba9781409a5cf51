"""A real Jupyter kernel for tests, driven over ZMQ with jupyter_client.

Notebook behaviour (context variables between cells, cell hooks, kernel shutdown) only shows
in a real kernel process, so tests run code there rather than calling functions directly.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import typing as t
from pathlib import Path

from jupyter_client.manager import KernelManager


@dataclasses.dataclass
class CellResult:
    stdout: str = ""
    stderr: str = ""
    results: list[dict[str, t.Any]] = dataclasses.field(default_factory=list)
    error: dict[str, t.Any] | None = None

    @property
    def text(self) -> str:
        """The plain-text repr of the cell's value (``Out[n]``)."""
        return "".join(r.get("text/plain", "") for r in self.results)


def kernel_environment(extra: t.Mapping[str, str]) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("MY_APP_", "FLASK_")) and k != "DATABASE_URL"
    }
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


class Kernel:
    """One IPython kernel process running this interpreter."""

    def __init__(self, cwd: Path, env: t.Mapping[str, str]) -> None:
        # IPC sockets in the test's directory: local only, nothing on the network.
        self.manager = KernelManager(kernel_name="python3", transport="ipc", ip=str(cwd / "kernel-ipc"))
        self.manager.start_kernel(cwd=str(cwd), env=kernel_environment(env))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)

    @property
    def pid(self) -> int:
        return self.manager.provisioner.process.pid  # type: ignore[union-attr]

    def run(self, code: str, timeout: float = 60) -> CellResult:
        result = CellResult()

        def on_output(msg: dict[str, t.Any]) -> None:
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream":
                if content["name"] == "stdout":
                    result.stdout += content["text"]
                else:
                    result.stderr += content["text"]
            elif kind in ("execute_result", "display_data"):
                result.results.append(content["data"])
            elif kind == "error":
                result.error = content

        reply = self.client.execute_interactive(
            code, timeout=timeout, output_hook=on_output, allow_stdin=False
        )
        if result.error is None and reply["content"]["status"] == "error":
            # IPython reports a UsageError on stderr only, not as an error message.
            result.error = {**reply["content"], "traceback": [result.stderr]}
        return result

    def ok(self, code: str, timeout: float = 60) -> CellResult:
        """Run ``code`` and fail the test with the kernel's traceback if it raised."""
        result = self.run(code, timeout=timeout)
        if result.error is not None:
            raise AssertionError(
                f"cell raised {result.error['ename']}: {result.error['evalue']}\n"
                + _strip_ansi("\n".join(result.error["traceback"]))
            )
        return result

    def value(self, code: str) -> t.Any:
        """Evaluate an expression in the kernel and return it (via repr/literal_eval).

        Under load, ipykernel 6.29 has been seen to send no value for the cell right after one
        that raised a UsageError; ``code`` is then run once more (keep it free of side effects
        that matter twice).
        """
        import ast

        result = self.ok(code)
        if not result.text:
            result = self.ok(code)
        if not result.text:
            raise AssertionError(f"{code!r} showed no value; stdout {result.stdout!r}, stderr {result.stderr!r}, outputs {result.results!r}")
        return ast.literal_eval(result.text)

    def interrupt(self, code: str, *, after: float) -> tuple[dict[str, t.Any], float]:
        """Run ``code``, press the stop button ``after`` seconds later (SIGINT, as JupyterLab
        does), and return the cell's reply and the seconds from the interrupt to the reply."""
        import time

        msg_id = self.client.execute(code)
        time.sleep(after)
        self.manager.interrupt_kernel()
        pressed = time.monotonic()
        while True:
            msg = self.client.get_shell_msg(timeout=60)
            if msg["msg_type"] == "execute_reply":
                reply, seconds = msg["content"], time.monotonic() - pressed
                break
        # Take the cell's own output off the channel, so the next cell reads only its own.
        while True:
            msg = self.client.get_iopub_msg(timeout=10)
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                return reply, seconds

    def shutdown(self, restart: bool = False) -> None:
        if restart:
            self.manager.restart_kernel(now=False)
            self.client.wait_for_ready(timeout=60)
        else:
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=False)

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.manager.provisioner.process.wait(10)  # type: ignore[union-attr]
        self.client.stop_channels()
        self.manager.cleanup_resources()

    def close(self) -> None:
        if self.manager.has_kernel:
            self.client.stop_channels()
            self.manager.shutdown_kernel(now=True)


def _strip_ansi(text: str) -> str:
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)


PYTHON = sys.executable
