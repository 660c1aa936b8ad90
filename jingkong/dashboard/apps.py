from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    name = "jingkong.dashboard"
    label = "dashboard"
    verbose_name = _("Dashboard")

    def ready(self) -> None:
        from jingkong.core import jobs
        from jingkong.dashboard import families, refresher

        families.load_all()
        jobs.on_idle(refresher.run_pending)
