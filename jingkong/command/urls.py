from __future__ import annotations

app_name = "command"
urlpatterns: list = []
