"""The ASGI handler (synthlab/asgi_handler.py) through the real application, as a server calls it:
JSON answers and the error envelope, a streaming response that really streams from the view's
thread, on_commit hooks, and database connections given back when a request ends."""

import json
import threading

import pytest
from asgiref.sync import async_to_sync
from channels.testing import ApplicationCommunicator
from django.core.signals import request_finished
from django.db import connection, transaction
from django.http import JsonResponse, StreamingHttpResponse
from django.urls import include, path

from annotation.models import Project
from synthlab.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

seen: dict = {}


def streaming_view(request):
    seen["view_thread"] = threading.get_ident()
    release = seen["release"]

    def rows():
        yield b"first,"
        # The client has the first chunk before the view's iterator goes on.
        release.wait(timeout=10)
        seen["stream_thread"] = threading.get_ident()
        yield f"{Project.objects.count()} projects,".encode()
        yield b"last"

    return StreamingHttpResponse(rows(), content_type="text/plain")


def commit_view(request):
    with transaction.atomic():
        Project.objects.count()
        transaction.on_commit(lambda: seen.setdefault("hooks", []).append(threading.get_ident()))
    seen["view_thread"] = threading.get_ident()
    return JsonResponse({"ok": True})


def failing_view(request):
    raise RuntimeError("boom")


urlpatterns = [
    path("t/stream/", streaming_view),
    path("t/commit/", commit_view),
    path("t/fail/", failing_view),
    path("", include("synthlab.urls")),
]


@pytest.fixture(autouse=True)
def _urls(settings):
    settings.ROOT_URLCONF = __name__
    seen.clear()
    seen["release"] = threading.Event()


def scope(path, method="GET", headers=()):
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("localhost", 80),
    }


async def _start(path, **kwargs):
    app = ApplicationCommunicator(application, scope(path, **kwargs))
    await app.send_input({"type": "http.request", "body": b"", "more_body": False})
    return app


def request(path, **kwargs) -> tuple[int, dict, bytes]:
    async def go():
        app = await _start(path, **kwargs)
        start = await app.receive_output(10)
        body = b""
        while True:
            message = await app.receive_output(10)
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        await app.wait(10)
        return start["status"], dict(start["headers"]), body

    return async_to_sync(go)()


def test_api_errors_keep_the_json_envelope():
    status, headers, body = request("/api/v1/projects/")
    assert status == 401
    assert headers[b"Content-Type"] == b"application/json"
    assert json.loads(body)["error"]["code"]

    status, _, body = request(
        "/api/v1/projects/999999/tasks/next/", headers=[(b"authorization", b"Token nope")]
    )
    assert status == 401
    assert "Invalid token" in json.loads(body)["error"]["message"]


def test_an_exception_in_a_view_gives_a_500_and_the_next_request_is_served():
    status, _, _ = request("/t/fail/")
    assert status == 500
    status, _, _ = request("/api/v1/projects/")
    assert status == 401


def test_a_streaming_response_streams_from_the_views_thread_and_closes_after_the_last_chunk():
    finished = []

    def on_finished(**kwargs):
        finished.append(threading.get_ident())

    request_finished.connect(on_finished)
    try:

        async def go():
            app = await _start("/t/stream/")
            start = await app.receive_output(10)
            first = await app.receive_output(10)
            # The first chunk arrived while the iterator waits: nothing was buffered.
            assert first == {"type": "http.response.body", "body": b"first,", "more_body": True}
            assert not finished
            seen["release"].set()
            body = b""
            while True:
                message = await app.receive_output(10)
                body += message.get("body", b"")
                if not message.get("more_body"):
                    break
            await app.wait(10)
            return start, body

        start, body = async_to_sync(go)()
    finally:
        request_finished.disconnect(on_finished)
    assert start["status"] == 200
    assert body == f"{Project.objects.count()} projects,last".encode()
    # One thread for the view, its iterator and request_finished (which gives its DB connection back).
    assert seen["stream_thread"] == seen["view_thread"] == finished[0]


def test_on_commit_hooks_run_and_the_connection_is_given_back_in_the_request_thread():
    states = []

    def on_finished(**kwargs):
        states.append(threading.get_ident())

    # Connected after Django's close_old_connections, so it runs after it: the thread's connection
    # must be closed (given back to the pool on PostgreSQL) by then.
    def connection_state(**kwargs):
        states.append(connection.connection is None)

    request_finished.connect(on_finished)
    request_finished.connect(connection_state)
    try:
        status, _, body = request("/t/commit/")
    finally:
        request_finished.disconnect(on_finished)
        request_finished.disconnect(connection_state)
    assert (status, json.loads(body)) == (200, {"ok": True})
    assert seen["hooks"] == [seen["view_thread"]]
    assert states == [seen["view_thread"], True]
