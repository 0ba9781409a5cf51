"""JupyterLab in a real headless Chromium, for tests that use the notebooks the way people do.

:class:`LabServer` runs ``jupyter lab`` on a free port of 127.0.0.1 with a token, its own
config, data and runtime folders (nothing from the user's home), no update checks and no news
feed. :func:`launch_chromium` starts the system's Chromium through Playwright's Python package:
Playwright's own browser builds are not used (``playwright install`` is never needed), only an
installed ``chromium``. :class:`LabNotebook` opens one notebook, runs it with Run All and reads
back what JupyterLab rendered.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
import typing as t
import urllib.error
import urllib.request
from pathlib import Path

if t.TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

#: Where a system Chromium usually is (Debian's ``chromium`` package installs /usr/bin/chromium).
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Without the background-networking flags Chromium tries to reach Google's services, has its
#: connections refused here, and stalls; the rest keep a CI browser quiet and reproducible.
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

VIEWPORT = {"width": 1280, "height": 900}

#: JupyterLab settings for a test run: it makes no network requests of its own.
LAB_USER_SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}
LAB_SERVER_CONFIG = {
    "LabApp": {
        "news_url": None,
        "check_for_updates_class": "jupyterlab.handlers.announcements.NeverCheckForUpdate",
        "extension_manager": "readonly",
    },
    "ServerApp": {"open_browser": False},
}


def find_chromium() -> str | None:
    """The path of an installed Chromium, or ``None``. ``CHROMIUM_PATH`` wins if it is set."""
    configured = os.environ.get("CHROMIUM_PATH")
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def browser_unavailable_reason() -> str | None:
    """``None`` if the browser tests can run here, else why not."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install -e '.[dev]')"
    configured = os.environ.get("CHROMIUM_PATH")
    if configured and find_chromium() is None:
        return f"CHROMIUM_PATH={configured!r} is not an executable file"
    if find_chromium() is None:
        return (
            "no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + " on PATH, or set CHROMIUM_PATH);"
            " install it with: apt-get install chromium"
        )
    return None


def launch_chromium(playwright: Playwright, user_data_dir: Path) -> BrowserContext:
    """A headless Chromium with a fresh profile in ``user_data_dir``."""
    executable = find_chromium()
    assert executable is not None, browser_unavailable_reason()
    return playwright.chromium.launch_persistent_context(
        str(user_data_dir),
        executable_path=executable,
        headless=True,
        args=list(CHROMIUM_ARGS),
        viewport=VIEWPORT,
    )


class LabServer:
    """``jupyter lab`` serving ``root_dir``, its kernels started with ``env``.

    The server listens on port 0 (the OS picks a free port, so parallel test workers never
    collide) and writes its real URL to its runtime folder, where :meth:`wait_until_ready`
    reads it back. Its log goes to ``log_path``. :meth:`stop` ends it and its kernels.
    """

    def __init__(self, root_dir: Path, state_dir: Path, env: t.Mapping[str, str], log_path: Path) -> None:
        self.root_dir = root_dir
        self.state_dir = state_dir
        self.env = dict(env)
        self.log_path = log_path
        self.token = secrets.token_hex(16)
        self.url = ""
        self._process: subprocess.Popen[bytes] | None = None
        self._log: t.IO[bytes] | None = None

    def launch(self) -> None:
        """Start the server process; :meth:`wait_until_ready` waits for it to answer."""
        config_dir = self.state_dir / "config"
        runtime_dir = self.state_dir / "runtime"
        for name, values in LAB_USER_SETTINGS.items():
            path = config_dir / "lab" / "user-settings" / f"{name}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values), encoding="utf-8")
        (config_dir / "jupyter_server_config.json").write_text(json.dumps(LAB_SERVER_CONFIG), encoding="utf-8")
        env = {
            **self.env,
            "JUPYTER_CONFIG_DIR": str(config_dir),
            "JUPYTER_DATA_DIR": str(self.state_dir / "data"),
            "JUPYTER_RUNTIME_DIR": str(runtime_dir),
            "IPYTHONDIR": str(self.state_dir / "ipython"),
            "JUPYTER_PLATFORM_DIRS": "1",
        }
        args = [
            sys.executable, "-m", "jupyterlab",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port=0",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
        ]
        if os.getuid() == 0:  # as `make lab` does: Jupyter refuses root unless told
            args.append("--allow-root")
        self._log = open(self.log_path, "wb")  # closed by stop()
        self._process = subprocess.Popen(
            args, cwd=self.root_dir, env=env, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )

    def wait_until_ready(self, timeout: float = 90) -> None:
        """Return once the server answers its REST API; fail with its log if it exits or hangs."""
        assert self._process is not None, "launch() first"
        info_file = self.state_dir / "runtime" / f"jpserver-{self._process.pid}.json"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with status {self._process.returncode}:\n{self.log()}")
            if info_file.exists() and self._answers(info_file):
                return
            time.sleep(0.1)
        raise RuntimeError(f"jupyter lab did not start within {timeout:.0f} s:\n{self.log()}")

    def _answers(self, info_file: Path) -> bool:
        try:
            info = json.loads(info_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, OSError):
            return False  # being written
        url = info["url"].rstrip("/")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={self.token}", timeout=5) as response:
                ok = response.status == 200
        except (urllib.error.URLError, OSError):
            return False
        if ok:
            self.url = url
        return ok

    def lab_url(self, notebook: str, workspace: str) -> str:
        """The URL that opens ``notebook`` alone, in a fresh workspace of its own."""
        return f"{self.url}/lab/workspaces/{workspace}/tree/{notebook}?reset&token={self.token}"

    def log(self) -> str:
        if self._log is not None:
            self._log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-5000:]

    def stop(self) -> None:
        """Shut the server down (and its kernels with it); idempotent."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None


_PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

#: Some cell is queued or running (``[*]:``) or has run (``[3]:``).
_STARTED = f"""
() => [...document.querySelectorAll('{_PANEL} .jp-CodeCell .jp-InputPrompt')]
  .some(p => /\\[(\\*|\\d+)\\]/.test(p.textContent))
"""
#: Settled: the kernel is idle, the first cell ran and no cell is queued or running. JupyterLab
#: marks every cell ``[*]:`` as soon as Run All queues it, so a run that has not started yet
#: never looks settled; a run that stopped at an error leaves the cells after it ``[ ]:``.
_SETTLED = f"""
() => {{
  const panel = document.querySelector('{_PANEL}');
  if (!panel) return false;
  const status = panel.querySelector('.jp-Notebook-ExecutionIndicator')?.dataset.status;
  const prompts = [...panel.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent);
  return status === 'idle' && prompts.length > 0 && /\\[\\d+\\]/.test(prompts[0])
    && !prompts.some(p => p.includes('*'));
}}
"""
#: The status bar's kernel item once the kernel is up: "Python 3 (ipykernel) | Idle".
_KERNEL_IDLE = re.compile(r"\| Idle$")

_MAX_SCREENSHOT_HEIGHT = 20_000
#: How many pixels of the notebook's cells do not fit in its scrolling area (JupyterLab adds
#: room to scroll past the last cell, which does not count).
_NOTEBOOK_OVERFLOW = f"""
() => {{
  const panel = document.querySelector('{_PANEL}');
  const outer = panel.querySelector('.jp-WindowedPanel-outer') ?? panel.querySelector('.jp-Notebook');
  const cells = panel.querySelectorAll('.jp-Cell');
  const bottom = cells[cells.length - 1].getBoundingClientRect().bottom - outer.getBoundingClientRect().top;
  return Math.ceil(bottom + outer.scrollTop + 24 - outer.clientHeight);
}}
"""
_NEXT_LAYOUT = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
_SCROLL_TO_TOP = f"""
() => {{
  const panel = document.querySelector('{_PANEL}');
  (panel.querySelector('.jp-WindowedPanel-outer') ?? panel.querySelector('.jp-Notebook')).scrollTop = 0;
}}
"""

#: What JupyterLab rendered for each cell, in notebook order: its stderr (and error) texts and
#: how many images and SVGs of its outputs actually show (decoded, or laid out with a size).
_CELLS = f"""
() => [...document.querySelectorAll('{_PANEL} .jp-Notebook .jp-Cell')].map(cell => {{
  const area = cell.querySelector('.jp-OutputArea');
  const all = selector => area ? [...area.querySelectorAll(selector)] : [];
  return {{
    code: cell.classList.contains('jp-CodeCell'),
    stderr: all('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').map(e => e.textContent),
    images: all('.jp-OutputArea-output img').filter(i => i.complete && i.naturalWidth > 0).length,
    svgs: all('.jp-OutputArea-output svg').filter(s => s.getBoundingClientRect().width > 0).length,
  }};
}})
"""


class RenderedCell(t.TypedDict):
    code: bool
    stderr: list[str]
    images: int
    svgs: int


class LabNotebook:
    """One notebook open in JupyterLab, in its own workspace (nothing else open beside it)."""

    def __init__(self, page: Page, server: LabServer, name: str) -> None:
        self.page = page
        self.server = server
        self.name = name

    def open(self, timeout: float = 90) -> None:
        """Open the notebook and wait until its kernel has started and is idle.

        The notebook toolbar's indicator says "idle" before any kernel exists; the status bar
        names the kernel and its state only once the session is connected.
        """
        self.page.goto(self.server.lab_url(self.name, workspace=Path(self.name).stem))
        self.page.locator(".jp-StatusBar-Widget").get_by_text(_KERNEL_IDLE).wait_for(timeout=timeout * 1000)

    def run_all(self, timeout: float = 120) -> None:
        """Run > Run All Cells, then wait until the kernel is idle with nothing left queued."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

        self._menu("Run", "Run All Cells")
        try:
            self.page.wait_for_function(_STARTED, timeout=10_000, polling=100)
        except PlaywrightTimeoutError:
            raise AssertionError(f"Run All Cells did not start running {self.name}") from None
        self.page.wait_for_function(_SETTLED, timeout=timeout * 1000, polling=100)

    def save(self) -> None:
        """File > Save Notebook; returns once JupyterLab no longer marks the notebook modified."""
        self._menu("File", "Save Notebook")
        self.page.locator(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty").wait_for(state="detached")

    def _menu(self, menu: str, item: str) -> None:
        self.page.get_by_role("menuitem", name=menu, exact=True).click()
        self.page.locator(f".lm-Menu-item:has(.lm-Menu-itemLabel:text-is({item!r}))").click()

    def cells(self) -> list[RenderedCell]:
        return t.cast("list[RenderedCell]", self.page.evaluate(_CELLS))

    def screenshots(self, folder: Path) -> list[Path]:
        """Pictures of what JupyterLab shows: the whole notebook in one image, then each output
        with a figure on its own. Returns the files written."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = Path(self.name).stem
        whole = folder / f"{stem}.png"
        # Make the window as tall as the notebook, so one screenshot holds every cell. Cells
        # drawn for the first time can change the height: grow until nothing is left to scroll,
        # letting JupyterLab lay the notebook out again (two animation frames) after each step.
        self.page.evaluate(_SCROLL_TO_TOP)
        height = VIEWPORT["height"]
        for _ in range(8):
            self.page.evaluate(_NEXT_LAYOUT)
            overflow = int(self.page.evaluate(_NOTEBOOK_OVERFLOW))
            if overflow <= 0 or height >= _MAX_SCREENSHOT_HEIGHT:
                break
            height = min(height + overflow, _MAX_SCREENSHOT_HEIGHT)
            self.page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        self.page.evaluate(_SCROLL_TO_TOP)
        self.page.evaluate(_NEXT_LAYOUT)
        self.page.screenshot(path=str(whole))
        self.page.set_viewport_size(VIEWPORT)
        written = [whole]
        outputs = self.page.locator(_PANEL + " .jp-Cell .jp-OutputArea")
        for i in range(outputs.count()):
            area = outputs.nth(i)
            if area.locator(".jp-OutputArea-output img, .jp-OutputArea-output svg").count():
                path = folder / f"{stem}-figure-{len(written)}.png"
                area.screenshot(path=str(path))
                written.append(path)
        return written


def error_lines(stderr: str) -> list[str]:
    """The lines of a stderr output that show an error: a traceback, an exception's
    ``NameError: ...`` line, or a warning. Log lines are not errors, and neither is tqdm's
    ``TqdmWarning`` that a front end cannot draw its widget bar."""
    return [
        line for line in stderr.splitlines()
        if _ERROR_LINE.search(line) or (_WARNING_LINE.search(line) and "TqdmWarning" not in line)
    ]


_ERROR_LINE = re.compile(r"Traceback \(most recent call last\)|^\s*[\w.]*(Error|Exception)\b")
#: How the warnings module prints one: "path/to/file.py:12: SomeWarning: message".
_WARNING_LINE = re.compile(r"^\S.*:\d+: \w*Warning\b")


@contextlib.contextmanager
def lab_page(context: BrowserContext) -> t.Iterator[Page]:
    """A new browser tab, closed afterwards."""
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        yield page
    finally:
        page.close()
