"""The export form of the project page: format, file type, filters and the format's options."""

from django import forms

from ..models import Project, TaskType
from .rows import FORMATS
from .selectors import candidate_models, candidate_recipes
from .spec import ARCHIVES, FILE_TYPES, FILTER_KEYS, OPTION_KEYS, PAIR_RULES, member_usernames

FILE_TYPE_LABELS = {
    "jsonl": "JSONL",
    "parquet": "Parquet",
    "hf": "Hugging Face datasets folder (save_to_disk), packed",
}

# What the API takes that the page does not offer among its filters and options: the split follows
# the format (train, or eval for the eval format), the archive sits with the file type, and the
# pairing seed is left to the API.
NOT_ON_PAGE = ("split", "archive", "seed")


class ExportForm(forms.Form):
    format = forms.ChoiceField(choices=[(name, f.title) for name, f in FORMATS.items()])
    file_type = forms.ChoiceField(choices=[(t, FILE_TYPE_LABELS[t]) for t in FILE_TYPES], initial="jsonl")
    archive = forms.ChoiceField(
        choices=[(a, f".{a}") for a in ARCHIVES],
        initial="zip",
        required=False,
        help_text="How a datasets folder is packed.",
    )
    # Filters
    completed_only = forms.BooleanField(required=False, initial=True, label="Completed tasks only")
    min_agreement = forms.FloatField(
        required=False,
        min_value=-1,
        max_value=1,
        label="Minimum item agreement",
        help_text="0..1 (Krippendorff's alpha may go below 0).",
    )
    min_rating = forms.FloatField(
        required=False,
        min_value=1,
        max_value=5,
        label="Minimum rating",
        help_text="Of the chosen/completion candidate; SFT picks need 4 unless set.",
    )
    annotators = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Count only these annotators' answers (none ticked: everyone).",
    )
    date_from = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Answers from"
    )
    date_to = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}), label="Answers to"
    )
    models = forms.MultipleChoiceField(
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Keep rows whose drafts came from these models (none: all).",
    )
    recipes = forms.MultipleChoiceField(required=False, widget=forms.CheckboxSelectMultiple)
    # Options
    bare = forms.BooleanField(required=False, label="Bare file (no provenance columns)")
    rules = forms.MultipleChoiceField(
        choices=[(r, r) for r in PAIR_RULES],
        initial=list(PAIR_RULES),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Pairs from (DPO, reward)",
    )
    rating_pairs = forms.ChoiceField(
        choices=[("best_worst", "best vs worst"), ("best_random", "best vs a random lower one")],
        initial="best_worst",
        required=False,
        label="Ratings binarised as",
    )
    min_rating_gap = forms.FloatField(required=False, min_value=0, max_value=4, initial=1.0)
    min_vote_margin = forms.IntegerField(required=False, min_value=1, max_value=50, initial=1)
    kto_desirable_min = forms.FloatField(
        required=False, min_value=1, max_value=5, initial=4.0, label="KTO: desirable from rating"
    )
    kto_undesirable_max = forms.FloatField(
        required=False, min_value=1, max_value=5, initial=2.0, label="KTO: undesirable up to rating"
    )
    rating_agreement = forms.ChoiceField(
        choices=[("spread", "rating spread"), ("alpha", "Krippendorff's alpha")],
        initial="spread",
        required=False,
        label="Rating agreement",
    )
    rationales = forms.BooleanField(
        required=False,
        label="Rationales (labels)",
        help_text="Labels format: add a rationale column, the reasoning that leads to each label.",
    )

    def __init__(self, *args, project: Project, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["annotators"].choices = [(u, u) for u in member_usernames(project)]
        self.fields["models"].choices = [(m, m) for m in candidate_models(project=project)]
        self.fields["recipes"].choices = [(r, r) for r in candidate_recipes(project=project)]
        if project.task_type != TaskType.CLASSIFICATION:
            # The API takes rationales only for labels exports of classification projects.
            del self.fields["rationales"]

    # The filters and options come from the API's own lists (spec.py), so the page offers what the
    # API takes, except NOT_ON_PAGE.
    FIELDSETS = (
        ("", ("format", "file_type", "archive")),
        ("Filters", tuple(key for key in FILTER_KEYS if key not in NOT_ON_PAGE)),
        ("Options", tuple(key for key in OPTION_KEYS if key not in NOT_ON_PAGE)),
    )

    def fieldsets(self):
        return [
            (title, [self[name] for name in names if name in self.fields]) for title, names in self.FIELDSETS
        ]

    def columns(self):
        """Format and filters on the left; options, then the row count, on the right."""
        sets = self.fieldsets()
        return [sets[:2], sets[2:]]

    def to_service_data(self) -> dict:
        data = self.cleaned_data
        filters = {key: data.get(key) for key in FILTER_KEYS if key != "split"}
        for key in ("date_from", "date_to"):
            filters[key] = data[key].isoformat() if data.get(key) else None
        options = {
            "bare": data.get("bare"),
            "archive": data.get("archive") or None,
            "rules": data.get("rules") or None,
            "rating_pairs": data.get("rating_pairs") or None,
            "min_rating_gap": data.get("min_rating_gap"),
            "min_vote_margin": data.get("min_vote_margin"),
            "kto_desirable_min": data.get("kto_desirable_min"),
            "kto_undesirable_max": data.get("kto_undesirable_max"),
            "rating_agreement": data.get("rating_agreement") or None,
            "rationales": data.get("rationales") or None,
        }
        fmt = FORMATS[data["format"]]
        if not fmt.pairs:
            for key in ("rules", "rating_pairs", "min_rating_gap"):
                options.pop(key)
        if data["format"] != "labels":
            # Ticked, then another format chosen: dropped like the other formats' options.
            options.pop("rationales")
        if data["format"] != "kto":
            options.pop("kto_desirable_min")
            options.pop("kto_undesirable_max")
            if not fmt.pairs:
                options.pop("min_vote_margin")
        return {
            "format": data["format"],
            "file_type": data["file_type"],
            "filters": {k: v for k, v in filters.items() if v not in (None, [], "")},
            "options": {k: v for k, v in options.items() if v not in (None, [], "")},
        }

    def add_service_errors(self, exc) -> None:
        """Puts a service's details ("filters.min_rating") onto the matching fields."""
        placed = False
        for detail in exc.details:
            field = str(detail.get("field") or "").split(".")[-1]
            if field in self.fields:
                self.add_error(field, detail.get("message"))
                placed = True
        if not placed:
            self.add_error(None, exc.message)
