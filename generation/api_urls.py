from django.urls import path

from . import api

urlpatterns: list = [
    path("projects/<int:project_id>/jobs/", api.JobListApi.as_view(), name="api-jobs"),
    path("jobs/<int:job_id>/", api.JobDetailApi.as_view(), name="api-job"),
    path("jobs/<int:job_id>/cancel/", api.JobCancelApi.as_view(), name="api-job-cancel"),
    path("projects/<int:project_id>/model/test/", api.ProbeCreateApi.as_view(), name="api-model-test"),
    path(
        "projects/<int:project_id>/model/test/<int:probe_id>/",
        api.ProbeDetailApi.as_view(),
        name="api-model-test-detail",
    ),
]
