"""Indexes for the review queue's claim (services/review.py, _claim_query).

Written as SQL (same statements on PostgreSQL and SQLite) rather than in the models' Meta: partial
indexes whose predicate is part of the claim's WHERE clause, so the planner walks only the tasks
that can match.

- task_queue_fresh: open tasks nobody answered yet, in queue order. The claim's first walk stops at
  the first one with a free slot, however many tasks this annotator already answered.
- task_queue_started: open tasks with some answers, in queue order (what overlap leaves open).
- task_started_by_id: the same tasks by id; its first entry bounds the range of task ids the
  anti-join reads.
- annotation_annotator_task: an annotator's answers by task id, read as one range for the claim's
  hashed anti-join instead of one probe per task.
"""

from django.db import migrations

INDEXES = {
    "task_queue_fresh": (
        "annotation_reviewtask (project_id, mode, priority, id) WHERE status = 'open' AND annotation_count = 0"
    ),
    "task_queue_started": (
        "annotation_reviewtask (project_id, mode, priority, id) WHERE status = 'open' AND annotation_count > 0"
    ),
    "task_started_by_id": (
        "annotation_reviewtask (project_id, mode, id) WHERE status = 'open' AND annotation_count > 0"
    ),
    "annotation_annotator_task": "annotation_annotation (annotator_id, task_id)",
}


class Migration(migrations.Migration):
    dependencies = [("annotation", "0002_team_quality")]

    operations = [
        migrations.RunSQL(f"CREATE INDEX {name} ON {definition}", f"DROP INDEX IF EXISTS {name}")
        for name, definition in INDEXES.items()
    ]
