from __future__ import annotations

app_name = "tracing"
urlpatterns: list = []
