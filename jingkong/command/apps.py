from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CommandConfig(AppConfig):
    name = "jingkong.command"
    label = "command"
    verbose_name = _("Directives and services")

    def ready(self) -> None:
        # jobs_directives and jobs_services register their background job kinds on import.
        from jingkong.command import jobs_directives, jobs_services, subscribers  # noqa: F401

        subscribers.register()
