from __future__ import annotations

app_name = "codes"
urlpatterns: list = []
