"""Export files follow their rows: deleting an Export (admin, API) or a whole project (its exports
cascade) removes the file or the project's export folder once the deletion has committed, so a
rolled-back delete keeps its files and a failed removal never undoes the delete."""

from functools import partial

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import Export, Project


def export_files_discard(**kwargs) -> None:
    # Imported when called: the export modules are heavy for every process's start-up.
    from .services.exports import export_files_discard as discard

    discard(**kwargs)


@receiver(post_delete, sender=Export, dispatch_uid="annotation.export_file_discard")
def export_deleted(sender, instance: Export, using, **kwargs) -> None:
    if instance.file_path:
        transaction.on_commit(
            partial(export_files_discard, file_path=instance.file_path), using=using, robust=True
        )


@receiver(post_delete, sender=Project, dispatch_uid="annotation.project_exports_discard")
def project_deleted(sender, instance: Project, using, **kwargs) -> None:
    # The folder also holds what no Export row names yet (a running export's .part file).
    transaction.on_commit(partial(export_files_discard, project_id=instance.pk), using=using, robust=True)
