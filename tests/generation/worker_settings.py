"""Settings of a Celery worker that a test starts as a subprocess: the base settings, pointed at
the test database (SYNTHLAB_TEST_DB_NAME) that pytest-django created."""

import os

from synthlab.settings.base import *  # noqa: F403
from synthlab.settings.base import DATABASES

if os.environ.get("SYNTHLAB_TEST_DB_NAME"):
    DATABASES["default"]["NAME"] = os.environ["SYNTHLAB_TEST_DB_NAME"]
