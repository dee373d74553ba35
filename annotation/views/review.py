from django.http import HttpResponse

from .base import project_view


@project_view()
def queue(request, project):  # replaced by the review queue
    return HttpResponse("The review queue is being built.", status=501)
