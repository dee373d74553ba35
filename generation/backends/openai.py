"""Any OpenAI-compatible endpoint (vLLM, TGI, Ollama, a hosted API) over HTTP.

Settings: base_url (e.g. http://gpu-host:8000/v1), model, api_key (kept server-side), timeout
(seconds per request), max_retries (on timeouts, connection errors, 429 and 5xx, with exponential
backoff that honours Retry-After), max_concurrency (requests in flight at once).

Chat answers use POST {base_url}/chat/completions. Label log-likelihoods use POST
{base_url}/completions with `echo` and `logprobs` (supported by vLLM and other servers with the
legacy completions route); an endpoint without it answers with a clear model error.
"""

import random
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from .base import BackendError, BaseBackend, ChatRequest, Generation, ModelUnavailable

RETRY_STATUSES = {408, 409, 425, 429, 500, 502, 503, 504}


class OpenAIBackend(BaseBackend):
    name = "openai"

    def __init__(self, *, config: dict):
        super().__init__(config=config)
        self.base_url = str(config.get("base_url") or "").rstrip("/")
        if not self.base_url.startswith(("http://", "https://")):
            raise ModelUnavailable("Give the endpoint's base URL, e.g. http://localhost:8000/v1.")
        if not self.model_id:
            raise ModelUnavailable("Give the model name the endpoint serves.")
        self.timeout = float(config.get("timeout") or 60)
        self.max_retries = int(config.get("max_retries") if config.get("max_retries") is not None else 3)
        self.max_concurrency = max(1, int(config.get("max_concurrency") or 4))
        self.backoff = float(config.get("retry_backoff") if config.get("retry_backoff") is not None else 1.0)
        headers = {"Content-Type": "application/json"}
        if config.get("api_key"):
            headers["Authorization"] = f"Bearer {config['api_key']}"
        self.client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )

    def describe(self) -> dict:
        # The base URL says where the model ran; the API key never leaves the server.
        return {**super().describe(), "base_url": self.base_url}

    # HTTP -------------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict, *, timeout: float | None = None) -> tuple[dict, str]:
        """The JSON answer and its raw text. Retries what may pass; raises BackendError otherwise."""
        last: BackendError | None = None
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self._delay(attempt, last))
            try:
                response = self.client.post(path, json=body, timeout=timeout or self.timeout)
            except httpx.TimeoutException:
                last = BackendError(
                    f"The endpoint did not answer within {timeout or self.timeout:g}s.", reason="timeout"
                )
                continue
            except httpx.TransportError as exc:
                last = BackendError(f"Could not reach {self.base_url}: {exc}")
                continue
            if response.status_code in RETRY_STATUSES:
                last = BackendError(f"HTTP {response.status_code} from the endpoint: {response.text[:300]}")
                last.retry_after = response.headers.get("Retry-After")
                continue
            if response.status_code >= 400:
                raise BackendError(f"HTTP {response.status_code} from the endpoint: {response.text[:500]}")
            try:
                data = response.json()
            except ValueError:
                error = BackendError(
                    f"The endpoint answered something that is not JSON: {response.text[:200]!r}"
                )
                error.raw = response.text
                raise error from None
            return data, response.text
        raise BackendError(f"{last.message} (after {self.max_retries + 1} tries)", reason=last.reason)

    def _delay(self, attempt: int, last: BackendError | None) -> float:
        retry_after = getattr(last, "retry_after", None)
        if retry_after:
            try:
                return min(float(retry_after), 30.0)
            except ValueError:
                pass
        return self.backoff * (2 ** (attempt - 1)) * (0.5 + random.random() / 2)

    # Generation -----------------------------------------------------------------------------------

    def _chat(self, request: ChatRequest) -> Generation:
        sampling = request.sampling
        body = {
            "model": self.model_id,
            "messages": request.messages,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": sampling.seed,
        }
        if sampling.top_k:
            body["top_k"] = sampling.top_k
        if sampling.repetition_penalty != 1.0:
            body["repetition_penalty"] = sampling.repetition_penalty
        try:
            data, raw = self._post("/chat/completions", body, timeout=min(self.timeout, sampling.timeout))
        except BackendError as exc:
            return Generation(text=getattr(exc, "raw", ""), finish_reason="error", error=exc)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"]
            if not isinstance(text, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError) as exc:
            return Generation(
                text=raw,
                finish_reason="error",
                error=BackendError(f"The endpoint's answer has no choices[0].message.content ({exc})."),
            )
        usage = data.get("usage") or {}
        tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
        finish = "length" if choice.get("finish_reason") == "length" else "stop"
        return Generation(text=text, tokens=int(tokens or 0), finish_reason=finish)

    def generate(self, requests: list[ChatRequest]) -> list[Generation]:
        if len(requests) <= 1 or self.max_concurrency == 1:
            return [self._chat(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            return list(pool.map(self._chat, requests))

    # Scoring ----------------------------------------------------------------------------------------

    @staticmethod
    def plain_prompt(messages: list[dict]) -> str:
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(lines) + "\n\nAssistant: "

    def score(self, messages: list[dict], continuations: list[str]) -> list[float]:
        prompt = self.plain_prompt(messages)
        scores = []
        for continuation in continuations:
            body = {
                "model": self.model_id,
                "prompt": prompt + continuation,
                "max_tokens": 1,
                "echo": True,
                "logprobs": 0,
                "temperature": 0,
            }
            data, _ = self._post("/completions", body)
            try:
                logprobs = data["choices"][0]["logprobs"]
                offsets, values = logprobs["text_offset"], logprobs["token_logprobs"]
            except (KeyError, IndexError, TypeError):
                raise BackendError(
                    "The endpoint does not return prompt log-probabilities (POST /completions with "
                    "echo and logprobs, as vLLM does), which classification confidence needs."
                ) from None
            end = len(prompt) + len(continuation)
            total = [
                v for o, v in zip(offsets, values, strict=False) if len(prompt) <= o < end and v is not None
            ]
            if not total:
                raise BackendError("The endpoint returned no log-probabilities for the label tokens.")
            scores.append(float(sum(total)))
        return scores

    def close(self) -> None:
        self.client.close()
