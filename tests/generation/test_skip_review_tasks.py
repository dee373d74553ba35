"""Candidates a recipe marks scores["skip_review"] (filtered out, or auto-accepted) never reach
reviewers; the others on the same item still do."""

from annotation.models import Candidate, Item, ReviewTask
from annotation.services.tasks import review_tasks_sync


def test_skip_review_candidates_get_no_task(project):
    item = Item.objects.create(project=project, text="fine")
    Candidate.objects.create(item=item, text="kept", label="positive")
    Candidate.objects.create(item=item, text="filtered", scores={"skip_review": True})
    review_tasks_sync(project=project, item_ids=[item.pk])
    shown = set(ReviewTask.objects.filter(item=item).values_list("candidate_a__text", flat=True))
    assert shown == {"kept"}
    assert ReviewTask.objects.filter(item=item, mode="label").exists()


def test_an_item_whose_only_draft_is_auto_accepted_gets_no_label_task(project):
    item = Item.objects.create(project=project, text="great")
    Candidate.objects.create(item=item, label="positive", scores={"skip_review": True, "auto_accepted": True})
    assert review_tasks_sync(project=project, item_ids=[item.pk]) == 0
    assert not ReviewTask.objects.filter(item=item).exists()
