from django import forms

from .models import ReviewMode, Role, TaskType


class ProjectForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    task_type = forms.ChoiceField(choices=TaskType.choices)
    labels = forms.CharField(
        required=False,
        help_text="Comma-separated, e.g. positive, negative. Needed for classification and NER.",
    )
    modes = forms.MultipleChoiceField(choices=ReviewMode.choices, widget=forms.CheckboxSelectMultiple)
    overlap = forms.IntegerField(min_value=1, max_value=50, initial=1, help_text="Annotators per task.")
    guidelines = forms.CharField(widget=forms.Textarea, required=False, help_text="Markdown.")
    rubric_1 = forms.CharField(required=False, label="Rating 1 means")
    rubric_2 = forms.CharField(required=False, label="Rating 2 means")
    rubric_3 = forms.CharField(required=False, label="Rating 3 means")
    rubric_4 = forms.CharField(required=False, label="Rating 4 means")
    rubric_5 = forms.CharField(required=False, label="Rating 5 means")

    def to_service_data(self) -> dict:
        data = dict(self.cleaned_data)
        data["rubric"] = {
            str(n): data.pop(f"rubric_{n}") for n in range(1, 6) if data.get(f"rubric_{n}") is not None
        }
        return data

    @classmethod
    def initial_from(cls, project) -> dict:
        initial = {
            "name": project.name,
            "description": project.description,
            "task_type": project.task_type,
            "labels": ", ".join(project.labels),
            "modes": project.modes,
            "overlap": project.overlap,
            "guidelines": project.guidelines,
        }
        for n in range(1, 6):
            initial[f"rubric_{n}"] = (project.rubric or {}).get(str(n), "")
        return initial


class MemberForm(forms.Form):
    username = forms.CharField(max_length=150)
    role = forms.ChoiceField(choices=Role.choices, initial=Role.ANNOTATOR)


class ImportUploadForm(forms.Form):
    file = forms.FileField(help_text=".jsonl, .json, .csv, .tsv or .txt, saved as UTF-8.")
    format = forms.ChoiceField(
        choices=[
            ("", "From the file name"),
            ("jsonl", "JSON lines"),
            ("json", "JSON array"),
            ("csv", "CSV"),
            ("tsv", "TSV"),
            ("txt", "Plain text"),
        ],
        required=False,
    )
    txt_mode = forms.ChoiceField(
        label="Plain text: one item per",
        choices=[("lines", "non-empty line"), ("paragraphs", "paragraph (blank-line separated)")],
        initial="lines",
        widget=forms.RadioSelect,
    )
    header = forms.BooleanField(
        label="CSV/TSV: the first row names the columns", required=False, initial=True
    )
