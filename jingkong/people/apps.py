from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class PeopleConfig(AppConfig):
    name = "jingkong.people"
    label = "people"
    verbose_name = _("Population baseline")

    def ready(self) -> None:
        from jingkong.people import jobs  # noqa: F401 - registers the job kinds
