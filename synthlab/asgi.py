import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "synthlab.settings.base")

from synthlab.asgi_handler import get_asgi_application  # noqa: E402

django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from synthlab.routing import websocket_urlpatterns  # noqa: E402

http_app = django_asgi_app
if settings.DEBUG or os.environ.get("SYNTHLAB_SERVE_STATIC") == "1":
    # The embedded default serves its own static files; production puts them behind the proxy.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    http_app = ASGIStaticFilesHandler(django_asgi_app)

application = ProtocolTypeRouter(
    {
        "http": http_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
