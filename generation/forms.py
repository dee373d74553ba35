from django import forms

from annotation.models import Split

from .backends import SELECTABLE
from .recipes import RECIPES


class ModelSettingsForm(forms.Form):
    backend = forms.ChoiceField(choices=list(SELECTABLE.items()), widget=forms.RadioSelect)
    model = forms.CharField(
        required=False,
        label="Model",
        help_text="transformers: a local folder or a Hugging Face id already downloaded on the worker. "
        "OpenAI-compatible: the model name the endpoint serves.",
    )
    revision = forms.CharField(required=False, help_text="transformers: a branch, tag or commit (optional).")
    device = forms.CharField(
        required=False, initial="auto", help_text="auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ..."
    )
    dtype = forms.ChoiceField(
        choices=[("auto", "auto"), ("float32", "float32"), ("bfloat16", "bfloat16"), ("float16", "float16")],
        required=False,
    )
    batch_size = forms.IntegerField(
        required=False, min_value=1, max_value=512, help_text="Items per batch (default 16)."
    )
    base_url = forms.CharField(
        required=False, label="Base URL", help_text="OpenAI-compatible: e.g. http://gpu-host:8000/v1"
    )
    api_key = forms.CharField(
        required=False,
        label="API key",
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Kept on the server and never shown again. Leave blank to keep the stored key.",
    )
    clear_api_key = forms.BooleanField(required=False, label="Remove the stored API key")
    timeout = forms.FloatField(
        required=False, min_value=0.1, help_text="Seconds per request (OpenAI-compatible)."
    )
    max_retries = forms.IntegerField(required=False, min_value=0, max_value=10)
    max_concurrency = forms.IntegerField(required=False, min_value=1, max_value=256)
    temperature = forms.FloatField(
        required=False, min_value=0, help_text="Sampling defaults for jobs. 0 = greedy."
    )
    top_p = forms.FloatField(required=False, min_value=0.01, max_value=1)
    top_k = forms.IntegerField(required=False, min_value=0)
    max_new_tokens = forms.IntegerField(required=False, min_value=1, max_value=8192)
    seed = forms.IntegerField(required=False, min_value=0)

    SAMPLING = ("temperature", "top_p", "top_k", "max_new_tokens", "seed")

    @classmethod
    def initial_from(cls, model_settings: dict) -> dict:
        initial = {k: v for k, v in (model_settings or {}).items() if k not in ("api_key", "sampling")}
        initial.setdefault("backend", "default")
        initial.update((model_settings or {}).get("sampling") or {})
        return initial

    def to_service_data(self) -> dict:
        data = {k: v for k, v in self.cleaned_data.items() if k not in self.SAMPLING and v not in (None, "")}
        data["sampling"] = {
            k: self.cleaned_data[k] for k in self.SAMPLING if self.cleaned_data.get(k) is not None
        }
        return data


class ProbeForm(forms.Form):
    prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}), max_length=4000, initial="Say hello in one short sentence."
    )


class JobForm(forms.Form):
    recipe = forms.ChoiceField(
        choices=[(name, r.title) for name, r in RECIPES.items()], widget=forms.RadioSelect
    )
    scope = forms.ChoiceField(
        choices=[
            ("all", "All items"),
            ("split", "One split"),
            ("without_candidates", "Items without candidates"),
        ],
        initial="all",
        widget=forms.RadioSelect,
    )
    split = forms.ChoiceField(choices=Split.choices, required=False)
    limit = forms.IntegerField(
        required=False, min_value=1, help_text="Only the first N items in scope (optional)."
    )
    n = forms.IntegerField(
        required=False, min_value=1, max_value=16, initial=2, help_text="candidates: responses per item."
    )
    temperatures = forms.CharField(
        required=False, initial="0.7, 1.0", help_text="candidates: one per sample, cycling."
    )
    temperature = forms.FloatField(required=False, min_value=0, help_text="weak_label: 0 = greedy (default).")
    max_new_tokens = forms.IntegerField(required=False, min_value=1, max_value=8192)
    seed = forms.IntegerField(required=False, min_value=0)
    batch_size = forms.IntegerField(required=False, min_value=1, max_value=512)

    def to_service_data(self) -> dict:
        data = self.cleaned_data
        items: dict = {}
        if data["scope"] == "split":
            items["split"] = data.get("split") or "train"
        elif data["scope"] == "without_candidates":
            items["without_candidates"] = True
        if data.get("limit"):
            items["limit"] = data["limit"]
        keys = ["max_new_tokens", "seed", "batch_size"]
        keys += ["n", "temperatures"] if data["recipe"] == "candidates" else ["temperature"]
        params = {k: data[k] for k in keys if data.get(k) not in (None, "")}
        return {"recipe": data["recipe"], "params": params, "items": items}
