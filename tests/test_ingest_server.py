"""The ingest endpoint behind a real HTTP server, called by the README's crontab line.

These run the line as cron would (``\\%`` becomes ``%``, then ``sh -c``), with curl, against
Werkzeug's server on a free port, so the README cannot drift from what works.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import shutil
import subprocess
import threading
import typing as t
from pathlib import Path

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from my_app import api_keys
from my_app.db import db
from my_app.models import Data

README = Path(__file__).parent.parent / "README.md"
pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


@pytest.fixture
def server(app: t.Any) -> t.Iterator[str]:
    http = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=http.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{http.server_port}"
    finally:
        http.shutdown()
        http.server_close()
        thread.join(5)


def readme_cron_command(url: str, headers_file: Path, reading: str) -> str:
    """The README's crontab line, as the shell command cron would run."""
    lines = [line for line in README.read_text().splitlines() if line.startswith("*/15 * * * * ")]
    assert len(lines) == 1, "the README should hold one crontab line"
    command = lines[0].split(None, 5)[5].replace("\\%", "%")  # what cron does with \%
    for placeholder, value in [
        ("read-boiler --json", f"printf '%s' '{reading}'"),
        ("/etc/my_app/ingest.headers", str(headers_file)),
        ("https://my-app.example.com", url),
    ]:
        assert placeholder in command
        command = command.replace(placeholder, value)
    return command


@pytest.mark.backends("sqlite")
def test_the_readme_crontab_line_inserts_once_per_run(app, server, tmp_path):
    with app.app_context():
        key = api_keys.create_api_key("boiler-room").key
    headers_file = tmp_path / "ingest.headers"
    headers_file.write_text(f"Authorization: Bearer {key}\n")
    headers_file.chmod(0o600)
    command = readme_cron_command(server, headers_file, '{"value": 21.5, "source": "boiler"}')
    assert key not in command  # the key stays in the file, out of the process list

    def run() -> tuple[subprocess.CompletedProcess[str], str]:
        minute = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M")
        return subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, timeout=60
        ), minute

    first, first_minute = run()
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["count"] == 1
    again, again_minute = run()  # a second run in the same minute is a retry: same key
    assert again.returncode == 0, again.stderr
    with app.app_context():
        rows = db.session.execute(sa.select(Data.value, Data.source)).all()
    if again_minute == first_minute:
        assert again.stdout == first.stdout and rows == [(21.5, "boiler")]
    else:
        assert len(rows) == 2


@pytest.mark.backends("sqlite")
def test_the_readme_line_fails_loudly_with_a_bad_key(server, tmp_path):
    headers_file = tmp_path / "ingest.headers"
    headers_file.write_text("Authorization: Bearer myapp_AAAAAAAA.nope\n")
    command = readme_cron_command(server, headers_file, '{"value": 1}')
    result = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=60)
    assert result.returncode != 0  # cron mails the output
    assert "A valid API key is required" in result.stdout
    assert "401" in result.stderr


@pytest.mark.backends("sqlite")
def test_a_streamed_body_past_the_limit_is_413_not_truncated(app, server, tmp_path):
    """Werkzeug only cuts a chunked body at MAX_CONTENT_LENGTH; the endpoint must say 413."""
    with app.app_context():
        key = api_keys.create_api_key("cron").key
    app.config["MAX_CONTENT_LENGTH"] = 1000
    url = f"{server}/api/v1/data"

    def post_chunked(body: bytes) -> tuple[int, dict[str, t.Any]]:
        body_file = tmp_path / "body.json"
        body_file.write_bytes(body)
        result = subprocess.run(
            [
                "curl",
                "--silent",
                "--show-error",
                "--write-out",
                "\n%{http_code}",
                "-H",
                f"Authorization: Bearer {key}",
                "-H",
                "Content-Type: application/json",
                "-H",
                "Transfer-Encoding: chunked",
                "--data-binary",
                f"@{body_file}",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        body_text, _, code = result.stdout.rpartition("\n")
        return int(code), json.loads(body_text)

    record = b'{"value": 1}'
    exactly = record + b" " * (1000 - len(record))
    assert post_chunked(exactly)[0] == 201
    code, error = post_chunked(exactly + b" ")
    assert code == 413 and "1,000 bytes" in error["message"]
    # a complete JSON document followed by more than the limit is refused, not cut and accepted
    assert post_chunked(record + b" " * 5000)[0] == 413
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Data)) == 1


@pytest.mark.backends("sqlite")
def test_the_server_log_never_shows_the_key(app, server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    with app.app_context():
        key = api_keys.create_api_key("cron").key
    headers_file = tmp_path / "ingest.headers"
    headers_file.write_text(f"Authorization: Bearer {key}\n")
    command = readme_cron_command(server, headers_file, '{"value": 2}')
    assert subprocess.run(["sh", "-c", command], capture_output=True, timeout=60).returncode == 0
    subprocess.run(
        [
            "curl",
            "-s",
            "-H",
            f"Authorization: Bearer {key[:-3]}abc",
            f"{server}/api/v1/data",
            "--json",
            '{"value": 3}',
        ],
        capture_output=True,
        timeout=60,
    )

    assert re.search(r'"POST /api/v1/data HTTP/1\.1" 201', caplog.text)  # the access log
    assert re.search(r'"POST /api/v1/data HTTP/1\.1" 401', caplog.text)
    assert key.split(".")[1] not in caplog.text
    assert key.split(".")[1][:-3] not in caplog.text
