from django.http import HttpResponse

from ..models import Role
from .base import project_view


@project_view(min_role=Role.ADMIN)
def project_import(request, project):  # replaced by the import page
    return HttpResponse("Import page is being built.", status=501)
