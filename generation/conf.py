"""Generation settings with their defaults; any of them can be set in the Django settings."""

from django.conf import settings

DEFAULTS = {
    # Items per batch (per model call on a local model); a CUDA out-of-memory error halves it.
    "GENERATION_BATCH_SIZE": 16,
    # Backend when a project's model settings name none: default | transformers | openai.
    "GENERATION_DEFAULT_BACKEND": "default",
    # A running job whose worker has not reported for this long is handed to the next worker.
    "GENERATION_JOB_STALE_SECONDS": 600,
    # Whether a Hugging Face id may be downloaded from the hub (off: only the local cache is used).
    "SYNTHLAB_ALLOW_HUB_DOWNLOAD": False,
    # Seconds to wait for the broker when a job is started before answering 503.
    "GENERATION_BROKER_CHECK_SECONDS": 3,
}


def conf(name: str):
    return getattr(settings, name, DEFAULTS[name])
