"""`manage.py quickstart` from nothing: migrates, creates the admin and the demo project, serves."""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.core.management import call_command

from annotation.models import Item, Project

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_quickstart_setup_creates_admin_and_demo_project(client, monkeypatch, capsys):
    monkeypatch.setenv("SYNTHLAB_ADMIN_PASSWORD", "demo-pass-123")
    call_command("quickstart", "--no-serve")
    out = capsys.readouterr().out
    assert "Demo project: Demo: poem sentiment (24 items)" in out
    project = Project.objects.get(options__demo=True)
    assert Item.objects.filter(project=project).count() == 24
    # Running it again keeps what is there.
    call_command("quickstart", "--no-serve")
    assert Project.objects.filter(options__demo=True).count() == 1
    assert client.login(username="admin", password="demo-pass-123")
    page = client.get(project.get_absolute_url())
    assert page.status_code == 200
    assert "shall yet be glad for him, and he shall bless" in page.content.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_quickstart_serves_the_app_on_a_fresh_data_folder(tmp_path):
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "REDIS_URL", "SYNTHLAB_ADMIN_PASSWORD")
    }
    env.update({"SYNTHLAB_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "synthlab.settings.base"})
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "quickstart", "--port", str(port), "--no-worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "SynthLab is running at" in line:
                break
        output = "".join(lines)
        assert f"SynthLab is running at http://127.0.0.1:{port}/" in output, output
        password = re.search(r"password: (\S+)", output).group(1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", follow_redirects=True, timeout=10) as http:
            for _ in range(100):
                try:
                    login_page = http.get("/accounts/login/")
                    break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login_page.text).group(1)
            home = http.post(
                "/accounts/login/",
                data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
                headers={"Referer": f"http://127.0.0.1:{port}/accounts/login/"},
            )
            assert home.status_code == 200 and "Demo: poem sentiment" in home.text
            project_url = re.search(r'href="(/projects/\d+/)"', home.text).group(1)
            page = http.get(project_url)
            assert page.status_code == 200 and "to water, cloudlike on the bush afar," in page.text
            assert http.get("/static/vendor/htmx/htmx-2.0.11.min.js").status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=20)
    assert (tmp_path / "synthlab.sqlite3").exists()
