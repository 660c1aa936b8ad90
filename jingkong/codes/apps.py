from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CodesConfig(AppConfig):
    name = "jingkong.codes"
    label = "codes"
    verbose_name = _("Health codes and checkpoints")

    def ready(self) -> None:
        from jingkong.codes import jobs, subscribers

        jobs.register_kinds()
        subscribers.register()
