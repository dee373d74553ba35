"""Annotators never see other annotators' answers, nor which items are gold checks; reviewers and
admins see everything, with who gave it. Checked in the API and in the HTML pages."""

import pytest

from annotation.models import Candidate, CandidateSource, Membership, Role
from annotation.services.quality import items_gold_set

from .quality_factories import ANNOTATOR, answer, items_with, quality_project, tasks

pytestmark = pytest.mark.django_db

CAROL_EDIT = "Carol private rewrite of the answer."
CAROL_COMMENT = "carol thinks this is weak"
BOB_EDIT = "Bob own rewrite."


@pytest.fixture
def team(admin_user, annotator, make_user):
    carol = make_user("carol")
    rita = make_user("rita")
    project = quality_project(
        admin=admin_user,
        members=[(annotator, ANNOTATOR), (carol, ANNOTATOR), (rita, Role.REVIEWER)],
        modes=["rate", "edit"],
    )
    [item] = items_with(project, 1, texts={"m0": "The model draft."})
    draft = item.candidates.get()
    # What an edit submission leaves behind: a human candidate whose parent is the draft.
    for user, text in ((carol, CAROL_EDIT), (annotator, BOB_EDIT)):
        Candidate.objects.create(
            item=item,
            text=text,
            source=CandidateSource.HUMAN,
            recipe="edit",
            parent=draft,
            created_by=user,
            provenance={"source": "human", "annotator": user.username},
        )
    [rate_task] = tasks(project, "rate")
    answer(rate_task, carol, {"rating": 2, "comment": CAROL_COMMENT})
    items_gold_set(project=project, items=[item], reference={"rating": 4})
    return {"project": project, "item": item, "carol": carol, "rita": rita, "task": rate_task}


def test_items_api_hides_other_annotators_edits_and_gold_answers(team, annotator, api_client_for):
    project, item = team["project"], team["item"]
    body = api_client_for(annotator).get(f"/api/v1/projects/{project.pk}/items/").json()
    [row] = body["results"]
    texts = [c["text"] for c in row["candidates"]]
    assert texts == ["The model draft.", BOB_EDIT]
    assert "reference" not in row and "is_gold" not in row
    detail = api_client_for(annotator).get(f"/api/v1/projects/{project.pk}/items/{item.pk}/").json()
    assert CAROL_EDIT not in str(detail) and "reference" not in detail


def test_reviewers_and_admins_see_every_edit_and_the_gold_answer(team, admin_user, api_client_for):
    project = team["project"]
    for user in (admin_user, team["rita"]):
        [row] = api_client_for(user).get(f"/api/v1/projects/{project.pk}/items/").json()["results"]
        assert {c["text"] for c in row["candidates"]} >= {CAROL_EDIT, BOB_EDIT}
        assert row["is_gold"] is True and row["reference"] == {"rating": 4}


def test_task_review_api_shows_who_answered_to_reviewers_only(team, annotator, outsider, api_client_for):
    url = f"/api/v1/tasks/{team['task'].pk}/review/"
    forbidden = api_client_for(annotator).get(url)
    assert forbidden.status_code == 403 and CAROL_COMMENT not in forbidden.content.decode()
    assert api_client_for(outsider).get(url).status_code == 404
    body = api_client_for(team["rita"]).get(url).json()
    assert [(a["annotator"], a["value"]["comment"]) for a in body["annotations"]] == [
        ("carol", CAROL_COMMENT)
    ]


def test_html_pages_hide_other_annotators_answers(team, annotator, client):
    project = team["project"]
    client.force_login(annotator)
    page = client.get(f"/projects/{project.pk}/").content.decode()
    assert BOB_EDIT in page
    assert CAROL_EDIT not in page
    for path in (
        f"/projects/{project.pk}/adjudication/{team['task'].pk}/",
        f"/projects/{project.pk}/adjudication/",
        f"/projects/{project.pk}/dashboard/",
        f"/projects/{project.pk}/agreement/",
    ):
        response = client.get(path)
        assert response.status_code == 403, path
        assert CAROL_COMMENT not in response.content.decode()


def test_reviewer_sees_every_answer_with_who_gave_it_in_html(team, client):
    client.force_login(team["rita"])
    page = client.get(f"/projects/{team['project'].pk}/adjudication/{team['task'].pk}/").content.decode()
    assert CAROL_COMMENT in page and ">carol<" in page
    assert CAROL_EDIT in client.get(f"/projects/{team['project'].pk}/").content.decode()
    assert Membership.objects.get(project=team["project"], user=team["rita"]).role == Role.REVIEWER
