from django.utils.cache import patch_vary_headers


class HtmxVaryMiddleware:
    """htmx requests get a partial, full requests a page: caches must keep them apart."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.htmx = request.headers.get("HX-Request") == "true"
        response = self.get_response(request)
        patch_vary_headers(response, ("HX-Request",))
        return response
