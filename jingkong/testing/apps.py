from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TestingConfig(AppConfig):
    name = "jingkong.testing"
    label = "testing"
    verbose_name = _("Testing (快检测)")

    def ready(self) -> None:
        from jingkong.testing import (
            admin_campaigns,  # noqa: F401 - back office for rounds and sites
            jobs,  # noqa: F401 - registers the job kinds
        )
