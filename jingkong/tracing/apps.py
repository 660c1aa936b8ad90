from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TracingConfig(AppConfig):
    name = "jingkong.tracing"
    label = "tracing"
    verbose_name = _("Tracing (快流调)")

    def ready(self) -> None:
        from jingkong.core.events import subscribe
        from jingkong.tracing import jobs  # noqa: F401 - registers the job kinds
        from jingkong.tracing.subscribers import on_individual_positive

        subscribe("testing.individual_positive", on_individual_positive)
        try:
            from jingkong.tracing import lake  # noqa: F401 - registers the lake's job kinds
        except ModuleNotFoundError as exc:  # only while the lake module is being written
            if exc.name != "jingkong.tracing.lake":
                raise
