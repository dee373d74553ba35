"""Django's ASGI handler with the request path run as one synchronous call.

Every view and middleware of SynthLab is synchronous. Django's stock ASGIHandler builds an async
middleware chain, so one request crosses between the event loop and a worker thread several times
(into the sync middleware, back to the loop for the URL resolver, out again for the view and for
each async-adapted process_view hook). Each crossing costs scheduling and CPU under load. This
handler loads the chain in sync mode and runs it in one ``sync_to_async`` call (thread-sensitive,
inside the per-request ThreadSensitiveContext that ASGIHandler.__call__ opens, so the request keeps
one thread and one database connection, as before). Reading the body, the signals and sending the
response stay Django's own. Async views, should one appear, still work: the sync chain runs them
through async_to_sync.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def __init__(self):
        super(ASGIHandler, self).__init__()
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application() -> SyncChainASGIHandler:
    """Like django.core.asgi.get_asgi_application: sets Django up, answers the handler."""
    import django

    django.setup(set_prefix=False)
    return SyncChainASGIHandler()
