"""Forms of the method pages (seed tasks, documents, constitution)."""

from django import forms

from .methods import documents as docs


class SeedUploadForm(forms.Form):
    file = forms.FileField(
        label="Seed tasks (JSONL)",
        help_text='One {"id", "instruction", "instances": [{"input", "output"}], "is_classification"} per '
        "line, as Self-Instruct's seed_tasks.jsonl. Re-uploading an id updates it.",
    )


class DocumentUploadForm(forms.Form):
    file = forms.FileField(label="Document (PDF or text)")
    chunk_size = forms.IntegerField(
        label="Chunk size (characters)", min_value=200, max_value=20000, initial=docs.DEFAULTS["chunk_size"]
    )
    chunk_overlap = forms.IntegerField(
        label="Chunk overlap (characters)",
        min_value=0,
        max_value=5000,
        initial=docs.DEFAULTS["chunk_overlap"],
    )

    def clean(self):
        data = super().clean()
        size, overlap = data.get("chunk_size"), data.get("chunk_overlap")
        if size is not None and overlap is not None and overlap >= size:
            self.add_error("chunk_overlap", "The overlap must be smaller than the chunk size.")
        return data


class ConstitutionForm(forms.Form):
    constitution = forms.CharField(
        label="Principles, one per line",
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "true"}),
        help_text="name | critique request | revision request. Leave empty to use the default 16 principles.",
    )
