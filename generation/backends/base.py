"""What every model backend offers. Concrete backends live beside this module and are picked by
name from the project's model settings (see generation.backends.backend_for), the way Django picks
an e-mail backend from EMAIL_BACKEND."""

from dataclasses import asdict, dataclass, field, replace


class BackendError(Exception):
    """The model could not answer. `reason` is "timeout" or "model_error"."""

    def __init__(self, message: str, *, reason: str = "model_error"):
        super().__init__(message)
        self.message = message
        self.reason = reason


class ModelUnavailable(BackendError):
    """The model cannot be loaded or reached at all: the job stops with this message."""


@dataclass(frozen=True)
class Sampling:
    """Decoding settings. temperature 0 means greedy decoding."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 256
    repetition_penalty: float = 1.0
    seed: int = 0
    # Seconds one request (or one batch on a local model) may take before it counts as a timeout.
    timeout: float = 120.0

    FIELDS = ("temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed", "timeout")

    @classmethod
    def from_dict(cls, data: dict | None, base: "Sampling | None" = None) -> "Sampling":
        """Reads the known keys of `data` over `base`; raises ValueError naming a bad value."""
        base = base or cls()
        values = {}
        for key, value in (data or {}).items():
            if key not in cls.FIELDS or value in (None, ""):
                continue
            kind = int if key in ("top_k", "max_new_tokens", "seed") else float
            try:
                values[key] = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"Sampling parameter {key} must be a number, not {value!r}.") from None
        sampling = replace(base, **values)
        if sampling.temperature < 0 or not 0 < sampling.top_p <= 1 or sampling.top_k < 0:
            raise ValueError("Use temperature >= 0, top_p in (0, 1] and top_k >= 0.")
        if not 1 <= sampling.max_new_tokens <= 8192:
            raise ValueError("max_new_tokens must be between 1 and 8192.")
        if sampling.timeout <= 0:
            raise ValueError("timeout must be a positive number of seconds.")
        return sampling

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class ChatRequest:
    messages: list[dict]
    sampling: Sampling = field(default_factory=Sampling)


@dataclass
class Generation:
    """One answer. On failure `text` is whatever came back (possibly "") and `error` says why."""

    text: str = ""
    tokens: int = 0
    finish_reason: str = "stop"  # stop | length | error
    error: BackendError | None = None


class BaseBackend:
    name = "base"

    def __init__(self, *, config: dict):
        self.config = config

    @property
    def model_id(self) -> str:
        return str(self.config.get("model") or "")

    @property
    def revision(self) -> str:
        return str(self.config.get("revision") or "")

    def describe(self) -> dict:
        """What provenance records about the model."""
        return {"backend": self.name, "model": self.model_id, "revision": self.revision}

    def generate(self, requests: list[ChatRequest]) -> list[Generation]:
        """One Generation per request, in order. A request that fails gets `error` set; the others
        still come back. Raises ModelUnavailable only when nothing can be answered at all."""
        raise NotImplementedError

    def score(self, messages: list[dict], continuations: list[str]) -> list[float]:
        """Log-likelihood (natural log, summed over tokens) of each continuation as the complete
        assistant answer to `messages`. Raises BackendError."""
        raise NotImplementedError

    def close(self) -> None:
        """Frees what the backend holds (model weights, HTTP connections)."""
