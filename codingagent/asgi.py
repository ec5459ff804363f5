import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "codingagent.settings")
# Django must be set up before anything imports models (the websocket routes do).
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from codingagent.middleware import WebsocketUnavailableMiddleware  # noqa: E402
from codingagent.routing import websocket_urlpatterns  # noqa: E402


def _warm_up() -> None:
    """Pay at start for what the first requests after a deploy would, while they queue: the URLconf (it imports
    every view module, ~80 ms) and the templates of the session page and of every push (compiled once per
    process and engine; a burst of first requests compiled them in several threads at once)."""
    from django.template.loader import get_template
    from django.urls import get_resolver

    from analysis.streaming import push

    get_resolver().url_patterns  # noqa: B018 (imports the views)
    get_template("analysis/session_detail.html")
    for name in ("analysis/_push_run.html", "analysis/_push_step.html", "analysis/session_detail.html"):
        push.push_engine().get_template(name)


_warm_up()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": WebsocketUnavailableMiddleware(
            AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
        ),
    }
)
