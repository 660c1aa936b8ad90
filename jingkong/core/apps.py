from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    name = "jingkong.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self) -> None:
        from jingkong.core import clock

        # `jingkong demo` serves an outbreak replayed in January 2022: its processes share one replay clock.
        clock.install_replay_from_env()
