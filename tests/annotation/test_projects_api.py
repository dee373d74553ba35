import pytest

pytestmark = pytest.mark.django_db


def test_token_then_create_project_makes_caller_admin(api_client_for, admin_user):
    client = api_client_for()
    token = client.post(
        "/api/v1/auth/token/", {"username": "alice", "password": "pw-secret-123"}, format="json"
    )
    assert token.status_code == 200
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    created = client.post(
        "/api/v1/projects/",
        {
            "name": "Reviews",
            "task_type": "classification",
            "labels": ["pos", "neg"],
            "modes": ["label"],
            "overlap": 2,
        },
        format="json",
    )
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["slug"] == "reviews" and body["role"] == "admin" and body["overlap"] == 2
    listed = client.get("/api/v1/projects/").json()
    assert listed["count"] == 1 and listed["results"][0]["name"] == "Reviews"


def test_wrong_password_is_a_clear_error(api_client_for, admin_user):
    response = api_client_for().post(
        "/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Wrong username or password."


def test_invalid_project_answers_field_details_and_creates_nothing(api_client_for, admin_user):
    from annotation.models import Project

    response = api_client_for(admin_user).post(
        "/api/v1/projects/",
        {"name": "X", "task_type": "poetry", "modes": ["dance"], "overlap": 0},
        format="json",
    )
    assert response.status_code == 400
    fields = {d["field"] for d in response.json()["error"]["details"]}
    assert {"task_type", "modes"} <= fields
    assert Project.objects.count() == 0


def test_api_key_is_never_shown_back(api_client_for, admin_user, project):
    client = api_client_for(admin_user)
    patched = client.patch(
        f"/api/v1/projects/{project.pk}/",
        {"model": {"backend": "openai", "base_url": "http://x/v1", "api_key": "sk-secret"}},
        format="json",
    )
    assert patched.status_code == 200
    assert patched.json()["model"]["api_key"] == "********"
    assert "sk-secret" not in client.get(f"/api/v1/projects/{project.pk}/").content.decode()
    project.refresh_from_db()
    assert project.model_settings["api_key"] == "sk-secret"


def test_members_add_change_and_last_admin_is_kept(api_client_for, admin_user, make_user, project):
    make_user("carol")
    client = api_client_for(admin_user)
    added = client.post(
        f"/api/v1/projects/{project.pk}/members/", {"username": "carol", "role": "annotator"}, format="json"
    )
    assert added.status_code == 201
    names = [m["username"] for m in client.get(f"/api/v1/projects/{project.pk}/members/").json()["results"]]
    assert names == ["alice", "bob", "carol"]
    unknown = client.post(f"/api/v1/projects/{project.pk}/members/", {"username": "nobody"}, format="json")
    assert unknown.status_code == 400 and "nobody" in unknown.json()["error"]["message"]
    last_admin = client.delete(f"/api/v1/projects/{project.pk}/members/alice/")
    assert last_admin.status_code == 409
    assert client.delete(f"/api/v1/projects/{project.pk}/members/carol/").status_code == 204


def test_push_candidates_all_or_nothing(api_client_for, admin_user, project):
    from annotation.models import Candidate, Item

    item = Item.objects.create(project=project, text="I loved it", external_id="r1")
    client = api_client_for(admin_user)
    bad = client.post(
        f"/api/v1/projects/{project.pk}/candidates/",
        {
            "candidates": [
                {"item": item.pk, "text": "ok", "label": "positive"},
                {"external_id": "r1", "label": "meh"},
            ]
        },
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["details"][0] == {
        "row": 2,
        "field": "label",
        "message": "Unknown label 'meh'; this project's labels are: positive, negative.",
    }
    assert Candidate.objects.count() == 0
    good = client.post(
        f"/api/v1/projects/{project.pk}/candidates/",
        {
            "candidates": [
                {
                    "external_id": "r1",
                    "text": "Positive.",
                    "label": "positive",
                    "model": "gpt-x",
                    "scores": {"p": 0.9},
                }
            ]
        },
        format="json",
    )
    assert good.status_code == 201
    items = client.get(f"/api/v1/projects/{project.pk}/items/").json()["results"]
    assert items[0]["candidates"][0]["label"] == "positive" and items[0]["candidates"][0]["model"] == "gpt-x"
    # The project's modes turned the candidate into review tasks.
    assert set(project.tasks.values_list("mode", flat=True)) == {"rate", "edit", "label"}


def test_a_label_task_made_at_import_shows_the_later_model_suggestion(api_client_for, admin_user, project):
    from annotation.models import Item, ReviewTask
    from annotation.services.tasks import review_tasks_sync

    item = Item.objects.create(project=project, text="What a lovely day", external_id="d1")
    review_tasks_sync(project=project, item_ids=[item.pk])
    task = ReviewTask.objects.get(item=item, mode="label")
    assert task.candidate_a is None
    api_client_for(admin_user).post(
        f"/api/v1/projects/{project.pk}/candidates/",
        {"candidates": [{"external_id": "d1", "label": "positive", "model": "m"}]},
        format="json",
    )
    task.refresh_from_db()
    assert task.candidate_a.label == "positive"
