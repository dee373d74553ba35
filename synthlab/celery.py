import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")

app = Celery("synthlab")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
