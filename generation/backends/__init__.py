"""Model backends, chosen by name the way Django chooses an e-mail backend.

A project's model settings (Project.model_settings) name the backend:

- "default": the built-in SmolLM2-135M-Instruct on the CPU or GPU (transformers);
- "transformers": a local folder or a Hugging Face id in the local cache (`model`, `revision`,
  `device`, `dtype`, `batch_size`);
- "openai": an OpenAI-compatible endpoint (`base_url`, `model`, `api_key`, `timeout`,
  `max_retries`, `max_concurrency`);
- "locmem": an in-memory fake, for tests only (not offered in the UI).

Settings without a backend use the GENERATION_DEFAULT_BACKEND setting. backend_for() keeps one
loaded model per worker process and reuses it for every job and batch that asks for the same one.
"""

import hashlib
import json
import threading

from django.utils.module_loading import import_string

from ..conf import conf
from .base import BackendError, BaseBackend, ChatRequest, Generation, ModelUnavailable, Sampling

BACKENDS = {
    "default": "generation.backends.transformers.DefaultModelBackend",
    "transformers": "generation.backends.transformers.TransformersBackend",
    "openai": "generation.backends.openai.OpenAIBackend",
    "locmem": "generation.backends.locmem.LocMemBackend",
}
SELECTABLE = {
    "default": "Built-in SmolLM2-135M-Instruct (runs on this server's CPU or GPU)",
    "transformers": "Local folder or Hugging Face id (transformers)",
    "openai": "OpenAI-compatible endpoint (vLLM, TGI, Ollama, hosted API)",
}
# Keys that pick the model; sampling defaults and the like do not need a reload.
LOAD_KEYS = {
    "default": ("device", "dtype", "threads"),
    "transformers": ("model", "revision", "device", "dtype", "threads"),
    "openai": ("base_url", "model", "api_key", "timeout", "max_retries", "max_concurrency", "retry_backoff"),
    "locmem": ("model", "responses", "scores"),
}

_lock = threading.Lock()
_loaded: dict[str, BaseBackend] = {}

__all__ = [
    "BACKENDS",
    "BackendError",
    "BaseBackend",
    "ChatRequest",
    "Generation",
    "ModelUnavailable",
    "Sampling",
    "backend_for",
    "backend_name",
    "backends_close",
]


def backend_name(model_settings: dict | None) -> str:
    return str((model_settings or {}).get("backend") or conf("GENERATION_DEFAULT_BACKEND"))


def _key(name: str, model_settings: dict) -> str:
    wanted = {k: model_settings.get(k) for k in LOAD_KEYS.get(name, ()) if model_settings.get(k) is not None}
    blob = json.dumps([name, wanted], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def backend_for(model_settings: dict | None) -> BaseBackend:
    """The backend for these settings, loaded once per process and reused.

    Only one local (transformers) model is kept at a time: asking for another frees the first.
    Raises ModelUnavailable with what to fix.
    """
    model_settings = dict(model_settings or {})
    name = backend_name(model_settings)
    if name not in BACKENDS:
        raise ModelUnavailable(f"Unknown model backend {name!r}; choose one of: {', '.join(SELECTABLE)}.")
    key = _key(name, model_settings)
    with _lock:
        backend = _loaded.get(key)
        if backend is None:
            if name in ("default", "transformers"):
                for old_key, old in list(_loaded.items()):
                    if old.name in ("default", "transformers"):
                        old.close()
                        del _loaded[old_key]
            backend = import_string(BACKENDS[name])(config=model_settings)
            _loaded[key] = backend
        else:
            # Settings that need no reload (batch size) follow the latest job.
            if model_settings.get("batch_size") and hasattr(backend, "batch_size"):
                backend.batch_size = max(1, int(model_settings["batch_size"]))
        return backend


def backends_close() -> None:
    with _lock:
        for backend in _loaded.values():
            backend.close()
        _loaded.clear()
