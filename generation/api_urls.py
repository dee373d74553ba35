from django.urls import path

from . import api, api_methods

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
    path("projects/<int:project_id>/seed-tasks/", api_methods.SeedTasksApi.as_view(), name="api-seed-tasks"),
    path(
        "projects/<int:project_id>/documents/", api_methods.DocumentUploadApi.as_view(), name="api-documents"
    ),
    path(
        "projects/<int:project_id>/curation-dev-labels/",
        api_methods.CurationDevLabelApi.as_view(),
        name="api-curation-dev-labels",
    ),
    path(
        "projects/<int:project_id>/method-stats/",
        api_methods.MethodStatsApi.as_view(),
        name="api-method-stats",
    ),
]
