from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IsolationConfig(AppConfig):
    name = "jingkong.isolation"
    label = "isolation"
    verbose_name = _("Grouping, transfer and isolation")

    def ready(self) -> None:
        from jingkong.core.events import subscribe
        from jingkong.isolation import transfers  # noqa: F401
        from jingkong.isolation.subscribers_facilities import on_arrived, on_grouped, on_individual_positive

        subscribe("isolation.arrived", on_arrived)
        subscribe("isolation.grouped", on_grouped)
        subscribe("testing.individual_positive", on_individual_positive)
