from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class IsolationConfig(AppConfig):
    name = "jingkong.isolation"
    label = "isolation"
    verbose_name = _("Grouping, transfer and isolation")
