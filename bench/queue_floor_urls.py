"""The two queue URLs of the API (tasks/next and annotations) answered by views that do no queue
work, for bench/queue_floor.py. QUEUE_FLOOR picks what each request still pays for:

- django: a plain Django view; no database (the ASGI server, Django's handler and middleware)
- query: a plain Django view that reads the caller's token and user (the one indexed query every
  API request makes before its own work)
- drf: REST framework views with the API's token authentication (that same query) and JSON
  rendering: what every API request pays before the queue's own statements
"""

import itertools
import json
import os

from django.http import HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.response import Response
from rest_framework.views import APIView

from synthlab.authentication import FastTokenAuthentication

KIND = os.environ.get("QUEUE_FLOOR", "drf")
_task_ids = itertools.count(1)
_authentication = FastTokenAuthentication()


def _task() -> dict:
    # About the size and shape of a real rate task's payload.
    task_id = next(_task_ids)
    return {
        "id": task_id,
        "mode": "rate",
        "item": {"id": task_id, "prompt": f"Question {task_id}: explain step 3 of the process."},
        "candidates": [{"id": task_id, "text": f"Answer to question {task_id}. " * 8}],
        "rubric": {str(n): f"level {n}" for n in range(1, 6)},
        "draft": None,
    }


def _answer(task_id: int, data: dict) -> dict:
    return {"id": task_id, "task": task_id, "mode": "rate", "value": data.get("value"),
            "client_id": data.get("client_id"), "duration_ms": data.get("duration_ms")}  # fmt: skip


def _authenticate(request) -> None:
    header = request.headers.get("Authorization", "")
    if KIND == "query" and header.startswith("Token "):
        _authentication.authenticate_credentials(header.split(" ", 1)[1])


def next_plain(request, project_id):
    _authenticate(request)
    return HttpResponse(json.dumps(_task()), content_type="application/json")


@csrf_exempt
def submit_plain(request, task_id):
    _authenticate(request)
    return HttpResponse(
        json.dumps(_answer(task_id, json.loads(request.body))), content_type="application/json", status=201
    )


class NextApi(APIView):
    def get(self, request, project_id):
        return Response(_task())


class SubmitApi(APIView):
    def post(self, request, task_id):
        return Response(_answer(task_id, request.data), status=201)


if KIND == "drf":
    next_view, submit_view = NextApi.as_view(), SubmitApi.as_view()
else:
    next_view, submit_view = next_plain, submit_plain

urlpatterns = [
    path("api/v1/projects/<int:project_id>/tasks/next/", next_view),
    path("api/v1/tasks/<int:task_id>/annotations/", submit_view),
    path("api/v1/projects/", next_view, {"project_id": 0}),  # the bench's readiness probe
]
