"""An in-memory fake model for unit tests that do not test generation itself (permissions, views,
job bookkeeping). Like django.core.mail's locmem backend it keeps what it was sent in `sent`.

Config: {"backend": "locmem", "responses": [...]} answers in turn (cycling); without responses the
answer is "answer to: <the last user message>". {"scores": {"label": logprob}} sets label scores.
A response "!error" makes that request fail with a model error.
"""

from .base import BackendError, BaseBackend, ChatRequest, Generation

sent: list[ChatRequest] = []


class LocMemBackend(BaseBackend):
    name = "locmem"

    def __init__(self, *, config: dict):
        super().__init__(config=config)
        self._turn = 0

    @property
    def model_id(self) -> str:
        return str(self.config.get("model") or "locmem-fake")

    def generate(self, requests: list[ChatRequest]) -> list[Generation]:
        answers = []
        for request in requests:
            sent.append(request)
            responses = self.config.get("responses") or []
            if responses:
                text = str(responses[self._turn % len(responses)])
                self._turn += 1
            else:
                text = "answer to: " + request.messages[-1]["content"]
            if text == "!error":
                answers.append(Generation(finish_reason="error", error=BackendError("Fake model error.")))
            else:
                answers.append(Generation(text=text, tokens=len(text.split())))
        return answers

    def score(self, messages: list[dict], continuations: list[str]) -> list[float]:
        table = self.config.get("scores") or {}
        return [float(table.get(c, -5.0 - index)) for index, c in enumerate(continuations)]
