"""The OpenAI-compatible backend against a small local HTTP server that speaks the chat-completions
and completions protocol, with the failures real endpoints have."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from generation.backends import ChatRequest, Sampling
from generation.backends.base import BackendError
from generation.backends.openai import OpenAIBackend


class FakeEndpoint:
    """Answers each POST with the next scripted reply: ("ok", text) | ("status", code) |
    ("sleep", seconds) | ("garbage", body) | ("logprobs", prompt_len)."""

    def __init__(self):
        self.script: list[tuple] = []
        self.requests: list[dict] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                endpoint.requests.append(
                    {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                kind, value = endpoint.script.pop(0) if endpoint.script else ("ok", "hello")
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "ok", "late"
                if kind == "status":
                    self.send_response(value)
                    self.send_header("Retry-After", "0")
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                if kind == "garbage":
                    payload = value.encode()
                elif kind == "logprobs":
                    # One "token" per character; label characters score -value, the generated one -9.
                    text = body["prompt"]
                    offsets = list(range(len(text) + 1))
                    values = [None] + [
                        (-value if i >= endpoint.prompt_len else -0.1) for i in range(1, len(text))
                    ]
                    payload = json.dumps(
                        {
                            "choices": [
                                {
                                    "text": text,
                                    "logprobs": {"text_offset": offsets, "token_logprobs": values + [-9.0]},
                                }
                            ]
                        }
                    ).encode()
                else:
                    payload = json.dumps(
                        {
                            "choices": [
                                {"message": {"role": "assistant", "content": value}, "finish_reason": "stop"}
                            ],
                            "usage": {"completion_tokens": 3},
                        }
                    ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def endpoint():
    server = FakeEndpoint()
    yield server
    server.close()


def _backend(endpoint, **extra):
    return OpenAIBackend(
        config={
            "base_url": endpoint.url,
            "model": "served-model",
            "api_key": "sk-secret",
            "retry_backoff": 0,
            **extra,
        }
    )


def _ask(text="hi", **sampling):
    return ChatRequest(messages=[{"role": "user", "content": text}], sampling=Sampling(**sampling))


def test_chat_completion_sends_model_sampling_and_key(endpoint):
    endpoint.script = [("ok", "Paris.")]
    result = _backend(endpoint).generate(
        [_ask("capital?", temperature=0.7, top_p=0.9, max_new_tokens=12, seed=5)]
    )[0]
    assert result.text == "Paris." and result.tokens == 3 and result.error is None
    sent = endpoint.requests[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-secret"
    assert sent["body"]["model"] == "served-model" and sent["body"]["max_tokens"] == 12
    assert sent["body"]["temperature"] == 0.7 and sent["body"]["top_p"] == 0.9 and sent["body"]["seed"] == 5


def test_429_and_500_are_retried_with_backoff(endpoint):
    endpoint.script = [("status", 429), ("status", 500), ("ok", "finally")]
    result = _backend(endpoint, max_retries=3).generate([_ask()])[0]
    assert result.text == "finally" and len(endpoint.requests) == 3


def test_retries_run_out_into_a_model_error(endpoint):
    endpoint.script = [("status", 503)] * 3
    result = _backend(endpoint, max_retries=2).generate([_ask()])[0]
    assert result.error is not None and result.error.reason == "model_error"
    assert "HTTP 503" in result.error.message and "after 3 tries" in result.error.message


def test_slow_endpoint_is_a_timeout(endpoint):
    endpoint.script = [("sleep", 1.5)]
    result = _backend(endpoint, timeout=0.5, max_retries=0).generate([_ask()])[0]
    assert result.error.reason == "timeout" and "0.5s" in result.error.message


def test_malformed_json_is_an_error_with_the_raw_body(endpoint):
    endpoint.script = [("garbage", "<html>proxy error</html>"), ("garbage", '{"choices": []}')]
    backend = _backend(endpoint)
    first, second = backend.generate([_ask()])[0], backend.generate([_ask()])[0]
    assert first.error and "not JSON" in first.error.message and first.text == "<html>proxy error</html>"
    assert (
        second.error
        and "choices[0].message.content" in second.error.message
        and second.text == '{"choices": []}'
    )


def test_requests_run_concurrently_up_to_the_limit(endpoint):
    endpoint.script = [("sleep", 0.4)] * 4
    started = time.monotonic()
    results = _backend(endpoint, max_concurrency=4).generate([_ask(str(n)) for n in range(4)])
    assert [r.text for r in results] == ["late"] * 4
    assert time.monotonic() - started < 1.2  # 4 x 0.4s one after the other would take 1.6s


def test_label_scores_come_from_prompt_logprobs(endpoint):
    backend = _backend(endpoint)
    messages = [{"role": "user", "content": "great film"}]
    endpoint.prompt_len = len(backend.plain_prompt(messages))
    endpoint.script = [("logprobs", 0.5), ("logprobs", 2.0)]
    scores = backend.score(messages, ["pos", "negative"])
    assert scores == pytest.approx(
        [-1.5, -16.0]
    )  # 3 chars x -0.5, 8 chars x -2.0; the generated token is not counted
    assert endpoint.requests[0]["body"]["echo"] is True and endpoint.requests[0]["path"] == "/v1/completions"


def test_endpoint_without_prompt_logprobs_says_so(endpoint):
    endpoint.script = [("ok", "x")]
    with pytest.raises(BackendError, match="prompt log-probabilities"):
        _backend(endpoint).score([{"role": "user", "content": "x"}], ["a"])


@pytest.mark.django_db
def test_a_job_on_an_endpoint_keeps_going_past_bad_answers(endpoint, admin_user, make_items):
    from annotation.models import Candidate
    from annotation.services.projects import project_create
    from generation import services
    from generation.models import JobFailure

    project = project_create(
        user=admin_user, data={"name": "Chat", "task_type": "instruction", "modes": ["rate"]}
    )
    services.model_settings_update(
        project=project,
        data={
            "backend": "openai",
            "base_url": endpoint.url,
            "model": "served-model",
            "api_key": "sk-secret",
            "max_retries": 1,
            "max_concurrency": 1,
        },
    )
    project.model_settings["retry_backoff"] = 0
    project.save()
    good, garbled, down = make_items(project, ["one", "two", "three"])
    endpoint.script = [("ok", "answer one"), ("garbage", "not json at all"), ("status", 500), ("status", 500)]
    job = services.job_create_local(project=project, recipe="weak_label", params={"batch_size": 1})
    assert "api_key" not in job.model_settings  # the key stays on the project only
    job = services.job_run(job_id=job.pk)
    assert job.status == "succeeded" and job.progress_done == 3
    cand = Candidate.objects.get(item=good)
    assert (
        cand.text == "answer one"
        and cand.provenance["backend"] == "openai"
        and cand.provenance["base_url"] == endpoint.url
    )
    assert "sk-secret" not in str(cand.provenance)
    failures = {f.item_id: f for f in JobFailure.objects.filter(job=job)}
    assert failures[garbled.pk].raw_output == "not json at all" and failures[down.pk].reason == "model_error"
    assert all(r["auth"] == "Bearer sk-secret" for r in endpoint.requests)
