"""Tests: same as base, fast password hashing, a throwaway data folder per run."""

import tempfile
from pathlib import Path

from .base import *  # noqa: F403
from .base import DATABASES

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
_tmp = Path(tempfile.mkdtemp(prefix="synthlab-test-"))
MEDIA_ROOT = str(_tmp / "media")
EXPORT_DIR = str(_tmp / "exports")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(_tmp / "test.sqlite3")}
