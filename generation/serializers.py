from rest_framework import serializers

from .models import GenerationJob, JobFailure, ModelProbe


class JobCreateSerializer(serializers.Serializer):
    recipe = serializers.CharField()
    params = serializers.JSONField(required=False, default=dict)
    items = serializers.JSONField(required=False, default=dict)


class JobFailureSerializer(serializers.ModelSerializer):
    class Meta:
        model = JobFailure
        fields = ["item", "reason", "message", "raw_output", "created_at"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    items = serializers.JSONField(source="item_filter", read_only=True)
    progress = serializers.SerializerMethodField()
    created = serializers.SerializerMethodField()
    errors = serializers.SerializerMethodField()
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    model = serializers.SerializerMethodField()

    MAX_ERRORS = 100

    class Meta:
        model = GenerationJob
        fields = [
            "id",
            "project",
            "recipe",
            "params",
            "items",
            "model",
            "status",
            "message",
            "progress",
            "created",
            "failures_count",
            "errors",
            "tokens",
            "timings",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields

    def get_progress(self, job) -> dict:
        return {"done": job.progress_done, "total": job.progress_total}

    def get_created(self, job) -> dict:
        return {"candidates": job.candidates_created, "review_tasks": job.tasks_created}

    def get_errors(self, job) -> list[dict]:
        if not job.failures_count:
            return []
        return JobFailureSerializer(job.failures.order_by("id")[: self.MAX_ERRORS], many=True).data

    def get_model(self, job) -> dict:
        return {k: v for k, v in (job.model_settings or {}).items() if k != "api_key"}


class JobListSerializer(JobSerializer):
    class Meta(JobSerializer.Meta):
        fields = [f for f in JobSerializer.Meta.fields if f != "errors"]


class ProbeCreateSerializer(serializers.Serializer):
    prompt = serializers.CharField(max_length=4000)


class ProbeSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelProbe
        fields = [
            "id",
            "project",
            "prompt",
            "status",
            "answer",
            "error",
            "backend",
            "model",
            "seconds",
            "created_at",
            "finished_at",
        ]
        read_only_fields = fields
