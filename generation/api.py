"""REST endpoints of generation jobs (see /work/shared/API.md): thin views over services."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from annotation.models import Role
from annotation.selectors import project_get

from . import selectors, services
from .serializers import (
    JobCreateSerializer,
    JobListSerializer,
    JobSerializer,
    ProbeCreateSerializer,
    ProbeSerializer,
)


class JobListApi(GenericAPIView):
    serializer_class = JobListSerializer

    def get(self, request, project_id):
        project = project_get(user=request.user, project_id=project_id)
        page = self.paginate_queryset(selectors.job_list(project=project))
        return self.get_paginated_response(JobListSerializer(page, many=True).data)

    @extend_schema(request=JobCreateSerializer, responses={202: JobSerializer})
    def post(self, request, project_id):
        project = project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = JobCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        job = services.job_create(project=project, user=request.user, **body.validated_data)
        return Response(JobSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class JobDetailApi(GenericAPIView):
    serializer_class = JobSerializer

    def get(self, request, job_id):
        job = selectors.job_get(user=request.user, job_id=job_id)
        return Response(JobSerializer(job).data)


class JobCancelApi(GenericAPIView):
    serializer_class = JobSerializer

    @extend_schema(request=None, responses=JobSerializer)
    def post(self, request, job_id):
        job = selectors.job_get(user=request.user, job_id=job_id, min_role=Role.ADMIN)
        job = services.job_cancel(job=job)
        return Response(JobSerializer(job).data)


class ProbeCreateApi(GenericAPIView):
    serializer_class = ProbeSerializer

    @extend_schema(request=ProbeCreateSerializer, responses={202: ProbeSerializer})
    def post(self, request, project_id):
        project = project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        body = ProbeCreateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        probe = services.probe_create(
            project=project, user=request.user, prompt=body.validated_data["prompt"]
        )
        return Response(ProbeSerializer(probe).data, status=status.HTTP_202_ACCEPTED)


class ProbeDetailApi(GenericAPIView):
    serializer_class = ProbeSerializer

    def get(self, request, project_id, probe_id):
        project = project_get(user=request.user, project_id=project_id, min_role=Role.ADMIN)
        return Response(ProbeSerializer(selectors.probe_get(project=project, probe_id=probe_id)).data)
