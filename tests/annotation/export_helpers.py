"""Builds projects whose review outcomes the export tests know in advance.

Review tasks and annotations are written with the ORM (the review service is built elsewhere), with
`annotation_count` and `status` kept as the service keeps them: "done" once the overlap is reached.
"""

from __future__ import annotations

import itertools
import json
import tarfile
import zipfile
from pathlib import Path

from django.conf import settings

from annotation.models import (
    Annotation,
    Candidate,
    CandidateSource,
    Item,
    Membership,
    ReviewTask,
    Role,
    TaskStatus,
)
from annotation.validation import content_hash

_keys = itertools.count(1)


class Builder:
    def __init__(self, project, make_user, annotators: int = 3):
        self.project = project
        self.users = []
        for n in range(1, annotators + 1):
            user = make_user(f"ann{n}-{project.pk}")
            Membership.objects.create(project=project, user=user, role=Role.ANNOTATOR)
            self.users.append(user)

    def item(
        self, text="", *, prompt="", split="train", external_id=None, messages=None, reference=None
    ) -> Item:
        item = Item(
            project=self.project,
            text=text,
            prompt=prompt,
            split=split,
            external_id=external_id,
            messages=messages,
            reference=reference,
        )
        item.content_hash = content_hash(item.display_text)
        item.save()
        return item

    def cand(
        self,
        item,
        text="",
        *,
        model="model-a",
        recipe="candidates",
        label=None,
        source=CandidateSource.MODEL,
        parent=None,
    ) -> Candidate:
        return Candidate.objects.create(
            item=item, text=text, model=model, recipe=recipe, label=label, source=source, parent=parent
        )

    def task(self, item, mode, a=None, b=None, *, overlap=None) -> ReviewTask:
        return ReviewTask.objects.create(
            project=self.project,
            item=item,
            mode=mode,
            candidate_a=a,
            candidate_b=b,
            key=f"{mode}:t{next(_keys)}",
            overlap=overlap or self.project.overlap,
        )

    def annotate(self, task, user, value: dict, *, result=None) -> Annotation:
        annotation = Annotation.objects.create(
            task=task,
            annotator=user,
            mode=task.mode,
            value=value,
            rating=value.get("rating"),
            choice=value.get("choice"),
            result_candidate=result,
        )
        task.annotation_count += 1
        if task.annotation_count >= task.overlap:
            task.status = TaskStatus.DONE
        task.save(update_fields=["annotation_count", "status"])
        return annotation

    def rate(self, cand, ratings: list[int], *, overlap=None) -> ReviewTask:
        task = self.task(cand.item, "rate", cand, overlap=overlap or len(ratings))
        for user, rating in zip(self.users, ratings, strict=False):
            self.annotate(task, user, {"rating": rating, "comment": ""})
        return task

    def compare(self, a, b, choices: list[str], *, overlap=None) -> ReviewTask:
        task = self.task(a.item, "compare", a, b, overlap=overlap or len(choices))
        for user, choice in zip(self.users, choices, strict=False):
            self.annotate(task, user, {"choice": choice, "reason": ""})
        return task

    def edit(self, draft, texts: list[str], *, overlap=None) -> ReviewTask:
        task = self.task(draft.item, "edit", draft, overlap=overlap or len(texts))
        for user, text in zip(self.users, texts, strict=False):
            human = self.cand(
                draft.item, text, model="", recipe="", source=CandidateSource.HUMAN, parent=draft
            )
            self.annotate(task, user, {"text": text}, result=human)
        return task

    def label(self, item, values: list[dict], *, suggestion=None, overlap=None) -> ReviewTask:
        task = self.task(item, "label", suggestion, overlap=overlap or len(values))
        for user, value in zip(self.users, values, strict=False):
            self.annotate(task, user, value)
        return task


def export_path(export) -> Path:
    return Path(settings.EXPORT_DIR) / export.file_path


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def unpack(path: Path, into: Path) -> Path:
    """Unpacks a `datasets` export archive; answers the dataset folder inside it."""
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            zf.extractall(into)
    else:
        with tarfile.open(path) as tar:
            tar.extractall(into, filter="data")
    (folder,) = [p for p in into.iterdir() if p.is_dir()]
    return folder


def instruction_project(admin, make_user, name="Instructions"):
    """Review outcomes with known answers (3 annotators per task):

    i1  compare Paris/Lyon 2-1 for Paris; ratings 5,5,4 vs 2,1,1      -> Paris chosen
    i2  compare Blue/Purple tie,tie,a; ratings 4,4,4 vs 2,2,2         -> Blue chosen by ratings
    i3  one edit "teh cat" -> "the cat"                               -> human edit
    i4  compare two haikus both_bad,both_bad,a                         -> both undesirable (KTO)
    e1  eval item "What is 2 + 2?" answered "4", rated 5,5,5
    i6  train copy of e1 ("what is 2 +  2?"), compare 3-0, rated 5    -> an eval leak
    i7  compare with 2 of 3 votes                                      -> not complete
    """
    from annotation.services.projects import project_create

    project = project_create(
        user=admin,
        data={
            "name": name,
            "task_type": "instruction",
            "modes": ["rate", "compare", "edit"],
            "overlap": 3,
            "guidelines": "Prefer **short**, correct answers.",
        },
    )
    b = Builder(project, make_user)
    i1 = b.item(prompt="What is the capital of France?", external_id="i1")
    paris, lyon = (
        b.cand(i1, "Paris.", model="model-a"),
        b.cand(i1, "Lyon.", model="model-b", recipe="self_instruct"),
    )
    b.compare(paris, lyon, ["a", "a", "b"])
    b.rate(paris, [5, 5, 4])
    b.rate(lyon, [2, 1, 1])
    i2 = b.item(prompt="Name a primary colour.", external_id="i2")
    blue, purple = b.cand(i2, "Blue."), b.cand(i2, "Purple.", model="model-b")
    b.compare(blue, purple, ["tie", "tie", "a"])
    b.rate(blue, [4, 4, 4])
    b.rate(purple, [2, 2, 2])
    i3 = b.item(prompt="Fix the spelling: teh cat", external_id="i3")
    draft = b.cand(i3, "teh cat")
    b.edit(draft, ["the cat"], overlap=1)
    i4 = b.item(prompt="Write a haiku about rain.", external_id="i4")
    b.compare(
        b.cand(i4, "Rain rain."), b.cand(i4, "Rain falls.", model="model-b"), ["both_bad", "both_bad", "a"]
    )
    e1 = b.item(prompt="What is 2 + 2?", split="eval", external_id="e1", reference="4")
    b.rate(b.cand(e1, "4"), [5, 5, 5])
    i6 = b.item(prompt="what is 2 +  2?", external_id="i6")
    four, five = b.cand(i6, "4"), b.cand(i6, "5", model="model-b")
    b.compare(four, five, ["a", "a", "a"])
    b.rate(four, [5, 5, 5])
    i7 = b.item(prompt="Say hi.", external_id="i7")
    b.compare(b.cand(i7, "Hi!"), b.cand(i7, "Hello!", model="model-b"), ["a", "a"], overlap=3)
    return project, {"paris": paris, "lyon": lyon, "blue": blue, "purple": purple, "draft": draft}


def sentiment_project(admin, make_user):
    """c1 2-1 positive; c2 split 1-1 (no majority); c3 eval, negative; c4 positive with a suggestion."""
    from annotation.services.projects import project_create

    project = project_create(
        user=admin,
        data={
            "name": "Sentiment",
            "task_type": "classification",
            "labels": ["positive", "negative", "neutral"],
            "modes": ["label"],
            "overlap": 3,
        },
    )
    b = Builder(project, make_user)
    c1 = b.item("I love this film.", external_id="c1")
    b.label(c1, [{"labels": ["positive"]}, {"labels": ["positive"]}, {"labels": ["negative"]}])
    c2 = b.item("It was fine.", external_id="c2")
    b.label(c2, [{"labels": ["positive"]}, {"labels": ["negative"]}])
    c3 = b.item("Terrible acting.", split="eval", external_id="c3")
    b.label(c3, [{"labels": ["negative"]}] * 3)
    c4 = b.item("A joyful ride.", external_id="c4")
    suggestion = b.cand(c4, "", label="positive", recipe="weak_label")
    b.label(c4, [{"labels": ["positive"]}] * 3, suggestion=suggestion)
    return project, {"suggestion": suggestion}


def ner_project(admin, make_user):
    """n1: Alice (PER) and Paris (LOC) by the majority; n2: Bob (PER) by all."""
    from annotation.services.projects import project_create

    project = project_create(
        user=admin,
        data={
            "name": "People and places",
            "task_type": "ner",
            "labels": ["PER", "LOC"],
            "modes": ["label"],
            "overlap": 3,
        },
    )
    b = Builder(project, make_user)
    n1 = b.item("Alice visited Paris today.", external_id="n1")
    alice, paris = {"start": 0, "end": 5, "label": "PER"}, {"start": 14, "end": 19, "label": "LOC"}
    b.label(n1, [{"spans": [alice, paris]}, {"spans": [alice, paris]}, {"spans": [alice]}])
    n2 = b.item("Bob stayed home.", external_id="n2")
    b.label(n2, [{"spans": [{"start": 0, "end": 3, "label": "PER"}]}] * 3)
    return project, {}
