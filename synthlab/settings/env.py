"""The one place that reads the environment. Settings modules import `ENV` and nothing else reads os.environ."""

import os
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent.parent

_TRUE = {"1", "true", "yes", "on"}


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None or raw == "" else raw.strip().lower() in _TRUE


def _list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if not raw:
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


@dataclass(frozen=True)
class Env:
    debug: bool = field(default_factory=lambda: _bool("DEBUG", False))
    secret_key: str = field(default_factory=lambda: os.environ.get("SECRET_KEY", ""))
    allowed_hosts: list[str] = field(
        default_factory=lambda: _list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
    )
    csrf_trusted_origins: list[str] = field(default_factory=lambda: _list("CSRF_TRUSTED_ORIGINS", []))
    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("SYNTHLAB_DATA_DIR") or BASE_DIR / "var").resolve()
    )
    database_url: str = field(default_factory=lambda: os.environ.get("DATABASE_URL", ""))
    redis_url: str = field(default_factory=lambda: os.environ.get("REDIS_URL", ""))
    media_dir: str = field(default_factory=lambda: os.environ.get("SYNTHLAB_MEDIA_DIR", ""))
    model_cache_dir: str = field(default_factory=lambda: os.environ.get("SYNTHLAB_MODEL_CACHE", ""))
    max_upload_mb: int = field(default_factory=lambda: int(os.environ.get("SYNTHLAB_MAX_UPLOAD_MB", "512")))
    secure_ssl_redirect: bool = field(default_factory=lambda: _bool("SECURE_SSL_REDIRECT", True))
    request_threads: int = field(
        default_factory=lambda: int(os.environ.get("SYNTHLAB_REQUEST_THREADS", "16"))
    )
    webhooks_allow_private: bool = field(
        default_factory=lambda: _bool("SYNTHLAB_WEBHOOKS_ALLOW_PRIVATE", False)
    )


ENV = Env()
