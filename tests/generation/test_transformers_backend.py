"""The real transformers code path on a tiny randomly initialised Llama model built offline."""

import math

import pytest
import torch

from generation.backends import ChatRequest, Sampling, backend_for


def _chat(text):
    return [{"role": "user", "content": text}]


@pytest.fixture
def backend(tiny_model_dir):
    return backend_for(
        {"backend": "transformers", "model": str(tiny_model_dir), "batch_size": 4, "dtype": "float32"}
    )


def test_model_is_loaded_once_per_process_and_reused(tiny_model_dir, backend):
    again = backend_for(
        {"backend": "transformers", "model": str(tiny_model_dir), "batch_size": 2, "dtype": "float32"}
    )
    assert again is backend and again.batch_size == 2
    assert backend.describe()["device"] == "cpu" and backend.describe()["model"] == str(tiny_model_dir)


def test_left_padded_batches_give_the_same_answers_as_one_at_a_time(backend):
    assert backend.tokenizer.padding_side == "left"
    prompts = [
        "the film",
        "alice met bob in paris on monday and the film was great",
        "positive",
        "what is it ?",
    ]
    greedy = Sampling(max_new_tokens=6)
    batched = backend.generate([ChatRequest(_chat(p), greedy) for p in prompts])
    alone = [backend.generate([ChatRequest(_chat(p), greedy)])[0] for p in prompts]
    assert [g.text for g in batched] == [g.text for g in alone]
    assert len({g.text for g in alone}) > 1  # the prompts lead to different answers
    assert all(g.tokens <= 6 and g.error is None for g in batched)


def test_same_seed_reproduces_samples_and_other_seeds_differ(backend):
    def requests(seed):
        return [ChatRequest(_chat("hi"), Sampling(temperature=1.0, max_new_tokens=12, seed=seed))] * 3  # noqa: E731

    first = [g.text for g in backend.generate(requests(7))]
    second = [g.text for g in backend.generate(requests(7))]
    other = [g.text for g in backend.generate(requests(8))]
    assert first == second
    assert first != other
    assert len(set(first)) > 1  # rows in a batch are separate samples


def test_sampling_parameters_reach_generate(backend):
    short = backend.generate([ChatRequest(_chat("the film"), Sampling(max_new_tokens=3))])[0]
    assert short.tokens <= 3 and short.finish_reason in ("length", "stop")
    # top_k=1 is greedy decoding whatever the temperature.
    greedy = backend.generate([ChatRequest(_chat("the film"), Sampling(max_new_tokens=3))])[0]
    for seed in (1, 2, 3):
        topk = backend.generate(
            [ChatRequest(_chat("the film"), Sampling(temperature=1.5, top_k=1, max_new_tokens=3, seed=seed))]
        )
        assert topk[0].text == greedy.text


def test_label_scores_are_log_likelihoods_of_the_whole_answer(backend):
    labels = ["positive", "negative", "neutral"]
    scores = backend.score(_chat("the film was great"), labels)
    assert len(scores) == 3 and all(s < 0 for s in scores)
    # The same number by hand: sum of token log-probs of label + end-of-turn after the prompt.
    tok, model = backend.tokenizer, backend.model
    prompt = tok(backend.prompt_text(_chat("the film was great")), add_special_tokens=False)["input_ids"]
    cont = tok("negative", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    with torch.no_grad():
        logits = model(torch.tensor([prompt + cont])).logits[0]
    logprobs = torch.log_softmax(logits, dim=-1)
    expected = sum(float(logprobs[len(prompt) - 1 + i, t]) for i, t in enumerate(cont))
    assert math.isclose(scores[1], expected, rel_tol=1e-4)
    batched = backend.score_batch([(_chat("the film was great"), labels), (_chat("boring"), labels[:2])])
    assert [round(x, 4) for x in batched[0]] == [round(x, 4) for x in scores] and len(batched[1]) == 2


def test_out_of_memory_halves_the_batch_and_retries(backend, monkeypatch):
    # No GPU here, so CUDA running out of memory is simulated: the real generate runs for batches
    # of at most 2 and raises torch's OutOfMemoryError above that.
    real = backend.model.generate
    sizes = []

    def generate(**kwargs):
        sizes.append(kwargs["input_ids"].shape[0])
        if kwargs["input_ids"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(**kwargs)

    monkeypatch.setattr(backend.model, "generate", generate)
    results = backend.generate(
        [ChatRequest(_chat(f"item {n}"), Sampling(max_new_tokens=2)) for n in range(5)]
    )
    assert all(r.error is None for r in results) and len(results) == 5
    assert sizes[0] == 4 and backend.batch_size == 2 and max(sizes[1:]) == 2


def test_prompt_longer_than_the_model_takes_is_an_item_error_not_a_crash(backend):
    long = backend.generate(
        [
            ChatRequest(_chat("film " * 2000), Sampling(max_new_tokens=4)),
            ChatRequest(_chat("ok"), Sampling(max_new_tokens=4)),
        ]
    )
    assert long[0].error is not None and "Shorten" in long[0].error.message
    assert long[1].error is None
