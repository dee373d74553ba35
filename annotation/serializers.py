from rest_framework import serializers

from .models import Annotation, Candidate, Item, Membership, Project, ReviewMode, Role, Split, TaskType


class ProjectSerializer(serializers.ModelSerializer):
    model = serializers.JSONField(source="model_settings", required=False)
    labels = serializers.ListField(child=serializers.CharField(), required=False)
    modes = serializers.ListField(child=serializers.ChoiceField(choices=ReviewMode.choices), required=False)
    task_type = serializers.ChoiceField(choices=TaskType.choices, required=False)
    rubric = serializers.DictField(child=serializers.CharField(allow_blank=True), required=False)
    stats = serializers.SerializerMethodField()
    role = serializers.SerializerMethodField()

    class Meta:
        model = Project
        fields = [
            "id",
            "name",
            "slug",
            "description",
            "task_type",
            "labels",
            "modes",
            "overlap",
            "guidelines",
            "rubric",
            "model",
            "allow_overlapping_spans",
            "options",
            "stats",
            "role",
            "created_at",
        ]
        read_only_fields = ["id", "slug", "stats", "role", "created_at"]

    def get_stats(self, project) -> dict:
        stats = getattr(project, "stats_cache", None)
        if stats is not None:
            return stats
        return {
            "items": project.items.count(),
            "tasks": project.tasks.count(),
            "tasks_done": project.tasks.filter(status="done").count(),
            "annotations": Annotation.objects.filter(task__project=project).count(),
        }

    def get_role(self, project) -> str | None:
        return getattr(project, "current_role", None)

    def to_representation(self, instance):
        data = super().to_representation(instance)
        # API keys for OpenAI-compatible endpoints are kept server-side and never shown back.
        model = dict(data.get("model") or {})
        if model.get("api_key"):
            model["api_key"] = "********"
        data["model"] = model
        return data


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username")
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = Membership
        fields = ["username", "role", "paused", "paused_reason", "created_at"]
        read_only_fields = ["paused", "paused_reason", "created_at"]


class CandidateSerializer(serializers.ModelSerializer):
    class Meta:
        model = Candidate
        fields = [
            "id",
            "item",
            "text",
            "label",
            "model",
            "recipe",
            "source",
            "scores",
            "provenance",
            "parent",
            "created_at",
        ]
        read_only_fields = fields


class ItemSerializer(serializers.ModelSerializer):
    candidates = CandidateSerializer(many=True, read_only=True)
    split = serializers.ChoiceField(choices=Split.choices)

    class Meta:
        model = Item
        fields = [
            "id",
            "external_id",
            "text",
            "prompt",
            "messages",
            "metadata",
            "split",
            "reference",
            "is_gold",
            "status",
            "candidates",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def to_representation(self, instance):
        data = super().to_representation(instance)
        if self.context.get("blind"):
            # Annotators must not learn which items check them, nor the expected answers.
            data.pop("reference", None)
            data.pop("is_gold", None)
        return data


class CandidatesPushSerializer(serializers.Serializer):
    candidates = serializers.ListField(child=serializers.JSONField())


class MemberAddSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.ChoiceField(choices=Role.choices, default=Role.ANNOTATOR)
