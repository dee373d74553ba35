"""Every API endpoint × {anonymous, annotator of another project, annotator, admin} → the status the
caller gets. A resource the caller may not see answers 404; a member without the role answers 403."""

import pytest

from annotation.models import Candidate, Item, Membership, Role
from annotation.services.projects import project_create

pytestmark = pytest.mark.django_db

ANON, OTHER, ANNOTATOR, ADMIN = "anonymous", "other-project annotator", "annotator", "admin"


@pytest.fixture
def world(admin_user, annotator, outsider, make_user):
    project = project_create(
        user=admin_user,
        data={"name": "P", "task_type": "classification", "labels": ["yes", "no"], "modes": ["rate"]},
    )
    Membership.objects.create(project=project, user=annotator, role=Role.ANNOTATOR)
    other = project_create(user=make_user("olga"), data={"name": "Other", "task_type": "qa"})
    Membership.objects.create(project=other, user=outsider, role=Role.ANNOTATOR)
    make_user("newbie")
    item = Item.objects.create(project=project, text="hello", external_id="e1")
    Candidate.objects.create(item=item, text="hi", model="m")
    return {
        "project": project,
        "item": item,
        ANON: None,
        OTHER: outsider,
        ANNOTATOR: annotator,
        ADMIN: admin_user,
    }


# (method, path template, body, expected status for anonymous, other, annotator, admin)
MATRIX = [
    ("get", "/api/v1/projects/", None, (401, 200, 200, 200)),
    ("get", "/api/v1/projects/{p}/", None, (401, 404, 200, 200)),
    ("patch", "/api/v1/projects/{p}/", {"guidelines": "new"}, (401, 404, 403, 200)),
    ("get", "/api/v1/projects/{p}/members/", None, (401, 404, 200, 200)),
    (
        "post",
        "/api/v1/projects/{p}/members/",
        {"username": "newbie", "role": "annotator"},
        (401, 404, 403, 201),
    ),
    ("get", "/api/v1/projects/{p}/items/", None, (401, 404, 200, 200)),
    ("get", "/api/v1/projects/{p}/items/{i}/", None, (401, 404, 200, 200)),
    (
        "post",
        "/api/v1/projects/{p}/candidates/",
        {"candidates": [{"external_id": "e1", "text": "x"}]},
        (401, 404, 403, 201),
    ),
    ("delete", "/api/v1/projects/{p}/members/bob/", None, (401, 404, 403, 204)),
    ("delete", "/api/v1/projects/{p}/", None, (401, 404, 403, 204)),
]


@pytest.mark.parametrize("who_index,who", list(enumerate([ANON, OTHER, ANNOTATOR, ADMIN])))
@pytest.mark.parametrize("method,path,body,expected", MATRIX, ids=[f"{m} {p}" for m, p, _, _ in MATRIX])
def test_api_permission_matrix(world, api_client_for, method, path, body, expected, who_index, who):
    client = api_client_for(world[who])
    url = path.format(p=world["project"].pk, i=world["item"].pk)
    response = (
        getattr(client, method)(url, body, format="json")
        if body is not None
        else getattr(client, method)(url)
    )
    assert response.status_code == expected[who_index], (who, response.content[:300])
    if response.status_code >= 400:
        assert "error" in response.json() and response.json()["error"]["message"]


def test_projects_list_shows_only_member_projects(world, api_client_for):
    names = [p["name"] for p in api_client_for(world[OTHER]).get("/api/v1/projects/").json()["results"]]
    assert names == ["Other"]


@pytest.mark.parametrize(
    "path,expected",
    [
        ("/projects/{p}/", (302, 404, 200, 200)),
        ("/projects/{p}/settings/", (302, 404, 403, 200)),
        ("/projects/{p}/members/", (302, 404, 403, 200)),
    ],
)
def test_page_permissions(world, client, path, expected):
    url = path.format(p=world["project"].pk)
    for index, who in enumerate([ANON, OTHER, ANNOTATOR, ADMIN]):
        client.logout()
        if world[who] is not None:
            client.force_login(world[who])
        assert client.get(url).status_code == expected[index], who
