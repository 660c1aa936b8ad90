from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommandConfig(AppConfig):
    name = "jingkong.command"
    label = "command"
    verbose_name = _("Directives and services")

    def ready(self) -> None:
        from jingkong.command import jobs_directives, subscribers  # noqa: F401 - jobs_directives registers job kinds

        subscribers.register()
