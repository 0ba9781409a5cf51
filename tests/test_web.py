from __future__ import annotations

import pytest


@pytest.mark.backends("sqlite", "postgresql")
def test_overview_lists_tables_and_row_counts(client, runner):
    runner.invoke(args=["seed", "--users", "7", "--events", "1234", "--data-points", "0"])
    page = client.get("/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<td>events</td><td class=\"num\">1,234</td>" in html
    assert "<td>users</td><td class=\"num\">7</td>" in html


@pytest.mark.backends("sqlite")
def test_overview_explains_an_uninitialised_database(tmp_path):
    from my_app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'empty.sqlite'}"})
    html = app.test_client().get("/").get_data(as_text=True)
    assert "flask --app my_app init-db" in html


@pytest.mark.backends("sqlite")
def test_admin_page_lists_api_keys(client, admin_auth):
    page = client.get("/admin/", auth=admin_auth)
    assert page.status_code == 200
    assert "No API keys yet" in page.get_data(as_text=True)


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("who", ["nobody", "wrong password", "wrong user"])
def test_admin_pages_need_the_admin_password(client, admin_auth, who):
    auth = {"nobody": None, "wrong password": ("admin", "wrong"), "wrong user": ("root", admin_auth[1])}[who]
    page = client.get("/admin/", auth=auth)
    assert page.status_code == 401
    assert page.headers["WWW-Authenticate"].startswith("Basic ")
    assert "No API keys" not in page.get_data(as_text=True)


@pytest.mark.backends("sqlite")
def test_admin_pages_are_off_without_a_password(tmp_path):
    from my_app import create_app

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'a.sqlite'}"})
    page = app.test_client().get("/admin/", auth=("admin", ""))
    assert page.status_code == 403
    assert "MY_APP_ADMIN_PASSWORD" in page.get_data(as_text=True)


@pytest.mark.backends("sqlite")
def test_api_tables_is_json(client, runner):
    runner.invoke(args=["seed", "--users", "2", "--events", "5", "--data-points", "1"])
    body = client.get("/api/v1/tables").get_json()
    assert {"name": "events", "rows": 5} in body["tables"]
    assert client.get("/api/v1/health").get_json() == {"status": "ok"}
    missing = client.get("/api/v1/nope")
    assert missing.status_code == 404
