"""Indexes for the review queue's claim (services/review.py, _claim_query), declared on the models.

- task_queue_fresh: open tasks nobody answered yet, in queue order. The claim's first walk stops at
  the first one with a free slot, however many tasks this annotator already answered.
- task_queue_started: open tasks with some answers, in queue order (what overlap leaves open).
- task_started_by_id: the same tasks by id; its first entry bounds the range of task ids the
  anti-join reads.
- annotation_annotator_task: an annotator's answers by task id, read as one range for the claim's
  hashed anti-join instead of one probe per task.
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("annotation", "0002_team_quality"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddIndex(
            model_name="annotation",
            index=models.Index(fields=["annotator", "task"], name="annotation_annotator_task"),
        ),
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(
                condition=models.Q(("annotation_count", 0), ("status", "open")),
                fields=["project", "mode", "priority", "id"],
                name="task_queue_fresh",
            ),
        ),
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(
                condition=models.Q(("annotation_count__gt", 0), ("status", "open")),
                fields=["project", "mode", "priority", "id"],
                name="task_queue_started",
            ),
        ),
        migrations.AddIndex(
            model_name="reviewtask",
            index=models.Index(
                condition=models.Q(("annotation_count__gt", 0), ("status", "open")),
                fields=["project", "mode", "id"],
                name="task_started_by_id",
            ),
        ),
    ]
