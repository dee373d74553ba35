"""The quality dashboard in real Chromium, served by a real ASGI server (uvicorn, with websockets):
an admin watches the dashboard while an annotator submits a rating in another browser session,
and the numbers and the SVG charts update without a reload."""

import socket
import threading
import time

import pytest
import uvicorn
from channels.routing import ProtocolTypeRouter
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.asgi import get_asgi_application

from annotation.models import Annotation

from ..annotation.quality_factories import ANNOTATOR, answer, items_with, quality_project, tasks

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db):
    """The project's ASGI application (HTTP and websockets) on uvicorn in a thread of this process,
    so the in-memory channel layer of the embedded run is shared with it, as in production one
    Redis layer is shared by every server process."""
    from synthlab.asgi import application

    app = ProtocolTypeRouter(
        {
            "http": ASGIStaticFilesHandler(get_asgi_application()),
            "websocket": application.application_mapping["websocket"],
        }
    )
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="off", ws="websockets-sansio"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def _session(chromium, base_url, username):
    context = chromium.new_context(base_url=base_url)
    tab = context.new_page()
    tab.errors = []
    tab.on("pageerror", lambda error: tab.errors.append(str(error)))
    tab.set_default_timeout(15_000)
    tab.goto("/accounts/login/")
    tab.fill("input[name=username]", username)
    tab.fill("input[name=password]", "pw-secret-123")
    tab.press("input[name=password]", "Enter")
    tab.wait_for_url(lambda url: "/accounts/login/" not in url)
    return context, tab


def test_dashboard_charts_update_when_an_annotation_is_submitted_elsewhere(
    chromium, asgi_server, admin_user, annotator, make_user
):
    carol = make_user("carol")
    project = quality_project(
        admin=admin_user, members=[(annotator, ANNOTATOR), (carol, ANNOTATOR)], overlap=2
    )
    items_with(project, 2)
    first, _second = tasks(project, "rate")
    answer(first, carol, {"rating": 2, "comment": ""})

    admin_context, dashboard = _session(chromium, asgi_server, "alice")
    annotator_context = None
    try:
        dashboard.goto(f"/projects/{project.pk}/dashboard/")
        dashboard.wait_for_selector("#live-status[data-live=on]")
        assert dashboard.locator("[data-annotations=bob]").inner_text() == "0"
        assert dashboard.locator("#chart-ratings rect[data-rating='4']").count() == 0
        assert dashboard.locator("#chart-ratings rect[data-rating='2']").get_attribute("data-value") == "1"
        dashboard.evaluate("window.__notReloaded = true")

        # Another session: bob rates a task 4 in his queue, keyboard only.
        annotator_context, queue = _session(chromium, asgi_server, "bob")
        queue.goto(f"/projects/{project.pk}/queue/?mode=rate")
        queue.wait_for_selector("#panel[data-task]")
        before = queue.locator("#panel").get_attribute("data-task")
        queue.keyboard.press("4")
        queue.keyboard.press("Enter")
        queue.wait_for_function(
            "before => document.getElementById('panel').dataset.task !== before", arg=before
        )
        assert Annotation.objects.filter(annotator=annotator, rating=4).count() == 1

        # The dashboard follows: the annotator's count, the rating chart and its numbers table.
        dashboard.wait_for_function(
            "() => document.querySelector('[data-annotations=bob]').textContent.trim() === '1'"
        )
        assert dashboard.locator("#chart-ratings rect[data-rating='4']").get_attribute("data-value") == "1"
        table = dashboard.locator("#figure-ratings .chart-table").text_content()  # in a closed <details>
        assert "m0" in table
        assert dashboard.evaluate("window.__notReloaded") is True
        assert dashboard.errors == [] and queue.errors == []
    finally:
        admin_context.close()
        if annotator_context is not None:
            annotator_context.close()
