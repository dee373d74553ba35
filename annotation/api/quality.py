"""Quality API: project statistics, webhooks, assignment, gold and adjudication. Thin: each view
checks the caller's role through `selectors.project_get` and calls a selector or a service."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from synthlab.errors import NotFound

from .. import selectors
from ..models import Role, Webhook, WebhookDelivery, WebhookEvent
from ..services import webhooks as webhook_services


class WebhookSerializer(serializers.ModelSerializer):
    events = serializers.ListField(child=serializers.ChoiceField(choices=WebhookEvent.choices))
    secret = serializers.CharField(write_only=True, required=False, allow_blank=True)

    class Meta:
        model = Webhook
        fields = ["id", "url", "events", "secret", "active", "created_at"]
        read_only_fields = ["id", "created_at"]


class WebhookUpdateSerializer(serializers.Serializer):
    active = serializers.BooleanField(required=False)
    events = serializers.ListField(
        child=serializers.ChoiceField(choices=WebhookEvent.choices), required=False
    )


class WebhookDeliverySerializer(serializers.ModelSerializer):
    class Meta:
        model = WebhookDelivery
        fields = [
            "id",
            "webhook",
            "event",
            "payload",
            "status",
            "attempts",
            "response_status",
            "response_body",
            "error",
            "next_attempt_at",
            "created_at",
            "delivered_at",
        ]
        read_only_fields = fields


def _webhook_get(*, project, webhook_id) -> Webhook:
    webhook = Webhook.objects.filter(project=project, pk=webhook_id).first()
    if webhook is None:
        raise NotFound("No such webhook in this project.")
    return webhook


class WebhookListApi(GenericAPIView):
    serializer_class = WebhookSerializer

    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        page = self.paginate_queryset(project.webhooks.order_by("id"))
        return self.get_paginated_response(WebhookSerializer(page, many=True).data)

    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = request.data if isinstance(request.data, dict) else {}
        webhook = webhook_services.webhook_create(
            project=project,
            url=body.get("url", ""),
            events=body.get("events"),
            secret=body.get("secret") or "",
            user=request.user,
        )
        data = WebhookSerializer(webhook).data
        # The secret is shown once, here, so a generated one can be copied into the receiver.
        data["secret"] = webhook.secret
        return Response(data, status=status.HTTP_201_CREATED)


class WebhookDetailApi(GenericAPIView):
    serializer_class = WebhookSerializer

    def get(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        return Response(WebhookSerializer(_webhook_get(project=project, webhook_id=webhook_id)).data)

    @extend_schema(request=WebhookUpdateSerializer, responses=WebhookSerializer)
    def patch(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook = _webhook_get(project=project, webhook_id=webhook_id)
        body = WebhookUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        webhook = webhook_services.webhook_update(webhook=webhook, **body.validated_data)
        return Response(WebhookSerializer(webhook).data)

    @extend_schema(responses={204: None})
    def delete(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook_services.webhook_delete(webhook=_webhook_get(project=project, webhook_id=webhook_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class WebhookDeliveryListApi(GenericAPIView):
    serializer_class = WebhookDeliverySerializer

    def get(self, request, project_id, webhook_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook = _webhook_get(project=project, webhook_id=webhook_id)
        page = self.paginate_queryset(webhook.deliveries.order_by("-created_at", "-id"))
        return self.get_paginated_response(WebhookDeliverySerializer(page, many=True).data)


class WebhookDeliveryResendApi(GenericAPIView):
    serializer_class = WebhookDeliverySerializer

    @extend_schema(request=None, responses={202: WebhookDeliverySerializer})
    def post(self, request, project_id, webhook_id, delivery_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        webhook = _webhook_get(project=project, webhook_id=webhook_id)
        delivery = webhook.deliveries.filter(pk=delivery_id).first()
        if delivery is None:
            raise NotFound("No such delivery for this webhook.")
        fresh = webhook_services.webhook_delivery_resend(delivery=delivery)
        return Response(WebhookDeliverySerializer(fresh).data, status=status.HTTP_202_ACCEPTED)
