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
    path("projects/<int:project_id>/methods/", views.method_inputs_page, name="method_inputs"),
    path("projects/<int:project_id>/methods/seeds/", views.seed_upload, name="seed_upload"),
    path("projects/<int:project_id>/methods/documents/", views.document_upload, name="document_upload"),
    path("projects/<int:project_id>/methods/qa-to-eval/", views.qa_to_eval, name="qa_to_eval"),
    path("projects/<int:project_id>/methods/constitution/", views.constitution_edit, name="constitution"),
    path("projects/<int:project_id>/methods/curation/", views.curation_dev_set, name="curation_dev_set"),
    path(
        "projects/<int:project_id>/methods/curation/<int:candidate_id>/",
        views.curation_dev_label,
        name="curation_dev_label",
    ),
]
