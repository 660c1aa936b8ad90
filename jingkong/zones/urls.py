from __future__ import annotations

app_name = "zones"
urlpatterns: list = []
