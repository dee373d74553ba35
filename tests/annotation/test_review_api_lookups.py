"""The review API's hand-written lookups (token, membership, task) answer what the ORM ones did:
who may call, what a missing or out-of-range id gives, and the same annotation body as the list."""

import uuid

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Membership, Role

from .review_factories import items_with_candidates, queue_project

pytestmark = pytest.mark.django_db

HUGE = 10**30  # beyond any database id: no row, never a server error


@pytest.fixture
def rate_project(admin_user, annotator):
    project = queue_project(admin=admin_user, annotators=[annotator], overlap=2)
    items_with_candidates(project, 2, texts=("An answer.",))
    return project


def test_submit_answers_the_same_body_the_annotation_list_shows(api_client_for, annotator, rate_project):
    client = api_client_for(annotator)
    task = client.get(f"/api/v1/projects/{rate_project.pk}/tasks/next/?mode=rate").json()
    client_id = str(uuid.uuid4())
    body = {"value": {"rating": 4, "comment": " fine "}, "client_id": client_id, "duration_ms": 1200}
    created = client.post(f"/api/v1/tasks/{task['id']}/annotations/", body, format="json")
    assert created.status_code == 201
    owner = api_client_for(rate_project.created_by)
    listed = owner.get(f"/api/v1/projects/{rate_project.pk}/annotations/").json()["results"]
    assert created.json() == listed[0]
    assert created.json()["annotator"] == annotator.username and created.json()["client_id"] == client_id
    replay = client.post(f"/api/v1/tasks/{task['id']}/annotations/", body, format="json")
    assert replay.status_code == 200 and replay.json() == created.json()


def test_unknown_and_inactive_tokens_are_refused(api_client_for, annotator, rate_project):
    url = f"/api/v1/projects/{rate_project.pk}/tasks/next/?mode=rate"
    stranger = APIClient()
    stranger.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    refused = stranger.get(url)
    assert refused.status_code == 401 and refused.json()["error"]["message"] == "Invalid token."
    client = api_client_for(annotator)
    annotator.is_active = False
    annotator.save(update_fields=["is_active"])
    refused = client.get(url)
    assert refused.status_code == 401 and "inactive" in refused.json()["error"]["message"]
    assert Token.objects.filter(user=annotator).exists()


def test_ids_out_of_range_or_of_other_projects_are_not_found(
    api_client_for, annotator, outsider, rate_project
):
    client = api_client_for(annotator)
    body = {"value": {"rating": 3}, "client_id": str(uuid.uuid4())}
    assert client.get(f"/api/v1/projects/{HUGE}/tasks/next/").status_code == 404
    assert client.post(f"/api/v1/tasks/{HUGE}/annotations/", body, format="json").status_code == 404
    task = client.get(f"/api/v1/projects/{rate_project.pk}/tasks/next/?mode=rate").json()
    other = api_client_for(outsider)
    assert other.get(f"/api/v1/projects/{rate_project.pk}/tasks/next/").status_code == 404
    assert other.post(f"/api/v1/tasks/{task['id']}/annotations/", body, format="json").status_code == 404
    Membership.objects.create(project=rate_project, user=outsider, role=Role.ANNOTATOR)
    assert other.post(f"/api/v1/tasks/{task['id']}/annotations/", body, format="json").status_code == 201
