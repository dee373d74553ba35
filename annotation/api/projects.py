from django.db import transaction
from django.db.models import prefetch_related_objects
from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response
from rest_framework.views import APIView

from .. import selectors
from ..models import Role
from ..serializers import (
    CandidateSerializer,
    CandidatesPushSerializer,
    ItemSerializer,
    MemberAddSerializer,
    MembershipSerializer,
    ProjectSerializer,
)
from ..services import candidates as candidate_services
from ..services import projects as project_services


class ProjectListApi(GenericAPIView):
    serializer_class = ProjectSerializer

    @extend_schema(operation_id="projects_list", responses=ProjectSerializer(many=True))
    def get(self, request):
        projects = selectors.project_list(user=request.user).order_by("-created_at", "-id")
        page = self.paginate_queryset(projects)
        roles = dict(
            request.user.memberships.filter(project__in=[p.pk for p in page]).values_list(
                "project_id", "role"
            )
        )
        for project in page:
            project.current_role = roles.get(project.pk)
        return self.get_paginated_response(ProjectSerializer(page, many=True).data)

    def post(self, request):
        project = project_services.project_create(user=request.user, data=_project_data(request.data))
        project.current_role = Role.ADMIN
        return Response(ProjectSerializer(project).data, status=status.HTTP_201_CREATED)


def _project_data(data) -> dict:
    data = dict(data.items()) if hasattr(data, "items") else {}
    if "model" in data:
        data["model_settings"] = data.pop("model")
    return data


class ProjectDetailApi(GenericAPIView):
    serializer_class = ProjectSerializer

    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id)
        return Response(ProjectSerializer(project).data)

    def patch(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        data = _project_data(request.data)
        model = data.get("model_settings")
        # A masked key sent back unchanged keeps the stored one.
        if isinstance(model, dict) and model.get("api_key") == "********":
            model["api_key"] = project.model_settings.get("api_key", "")
        project = project_services.project_update(project=project, data=data)
        return Response(ProjectSerializer(project).data)

    def delete(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        project_services.project_delete(project=project)
        return Response(status=status.HTTP_204_NO_CONTENT)


class MemberListApi(GenericAPIView):
    serializer_class = MembershipSerializer

    @extend_schema(operation_id="members_list", responses=MembershipSerializer(many=True))
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id)
        members = project.memberships.select_related("user").order_by("user__username")
        page = self.paginate_queryset(members)
        return self.get_paginated_response(MembershipSerializer(page, many=True).data)

    @extend_schema(request=MemberAddSerializer, responses=MembershipSerializer)
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = MemberAddSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        membership = project_services.membership_add(project=project, **body.validated_data)
        return Response(MembershipSerializer(membership).data, status=status.HTTP_201_CREATED)


class MemberDetailApi(APIView):
    @extend_schema(responses={204: None})
    def delete(self, request, project_id, username):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        project_services.membership_remove(project=project, username=username)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemListApi(GenericAPIView):
    serializer_class = ItemSerializer

    @extend_schema(operation_id="items_list", responses=ItemSerializer(many=True))
    def get(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id)
        items = selectors.item_list(
            project=project,
            split=request.query_params.get("split"),
            status=request.query_params.get("status"),
            search=request.query_params.get("search"),
        ).prefetch_related(selectors.candidates_prefetch(project=project, user=request.user))
        page = self.paginate_queryset(items)
        return self.get_paginated_response(ItemSerializer(page, many=True, context=_blind(project)).data)


class ItemDetailApi(GenericAPIView):
    serializer_class = ItemSerializer

    def get(self, request, project_id, item_id):
        project = selectors.project_get(user=request.user, project_id=project_id)
        item = selectors.item_get(project=project, item_id=item_id)
        prefetch_related_objects([item], selectors.candidates_prefetch(project=project, user=request.user))
        return Response(ItemSerializer(item, context=_blind(project)).data)


class CandidateCreateApi(GenericAPIView):
    serializer_class = CandidatesPushSerializer

    @extend_schema(request=CandidatesPushSerializer, responses=CandidateSerializer(many=True))
    def post(self, request, project_id):
        project = selectors.project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        rows = request.data.get("candidates") if isinstance(request.data, dict) else None
        with transaction.atomic():
            created = candidate_services.candidates_create(project=project, rows=rows, user=request.user)
        return Response(
            {"created": len(created), "candidates": CandidateSerializer(created, many=True).data},
            status=status.HTTP_201_CREATED,
        )


def _blind(project) -> dict:
    """Serializer context: annotators get items without gold flags and expected answers."""
    return {"blind": not selectors.role_at_least(project.current_role, Role.REVIEWER)}
