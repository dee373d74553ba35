from django.urls import path

from .api import auth, projects

urlpatterns = [
    path("auth/token/", auth.TokenObtainApi.as_view(), name="api-token"),
    path("projects/", projects.ProjectListApi.as_view(), name="api-projects"),
    path("projects/<int:project_id>/", projects.ProjectDetailApi.as_view(), name="api-project"),
    path("projects/<int:project_id>/members/", projects.MemberListApi.as_view(), name="api-members"),
    path(
        "projects/<int:project_id>/members/<str:username>/",
        projects.MemberDetailApi.as_view(),
        name="api-member",
    ),
    path("projects/<int:project_id>/items/", projects.ItemListApi.as_view(), name="api-items"),
    path("projects/<int:project_id>/items/<int:item_id>/", projects.ItemDetailApi.as_view(), name="api-item"),
    path(
        "projects/<int:project_id>/candidates/", projects.CandidateCreateApi.as_view(), name="api-candidates"
    ),
]
