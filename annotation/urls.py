from django.urls import path

from .views import imports, projects, review

app_name = "annotation"

urlpatterns = [
    path("", projects.project_list, name="project_list"),
    path("projects/new/", projects.project_create, name="project_create"),
    path("projects/<int:project_id>/", projects.project_detail, name="project_detail"),
    path("projects/<int:project_id>/settings/", projects.project_settings, name="project_settings"),
    path("projects/<int:project_id>/members/", projects.project_members, name="project_members"),
    path(
        "projects/<int:project_id>/members/<str:username>/remove/",
        projects.project_member_remove,
        name="project_member_remove",
    ),
    path("projects/<int:project_id>/import/", imports.project_import, name="project_import"),
    path("projects/<int:project_id>/queue/", review.queue, name="queue"),
]
