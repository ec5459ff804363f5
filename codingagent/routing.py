from django.urls import path

from analysis.streaming import consumers

websocket_urlpatterns = [
    path("ws/sessions/<int:session_pk>/", consumers.SessionConsumer.as_asgi()),
]
