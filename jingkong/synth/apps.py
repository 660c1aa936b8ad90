from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class SynthConfig(AppConfig):
    name = "jingkong.synth"
    label = "synth"
    verbose_name = _("Synthetic district")

    def ready(self) -> None:
        from jingkong.synth import jobs  # noqa: F401 - registers the synth.generate job kind
