from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TracingConfig(AppConfig):
    name = "jingkong.tracing"
    label = "tracing"
    verbose_name = _("Tracing (快流调)")
