from __future__ import annotations

app_name = "isolation"
urlpatterns: list = []
