from django.urls import path

from . import views

app_name = "generation"

urlpatterns: list = [
    path("projects/<int:project_id>/model/", views.model_settings, name="model_settings"),
    path("projects/<int:project_id>/model/test/", views.model_test, name="model_test"),
    path(
        "projects/<int:project_id>/model/test/<int:probe_id>/",
        views.model_test_detail,
        name="model_test_detail",
    ),
    path("projects/<int:project_id>/jobs/", views.job_list, name="job_list"),
    path("projects/<int:project_id>/jobs/new/", views.job_create, name="job_create"),
    path("jobs/<int:job_id>/", views.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
]
