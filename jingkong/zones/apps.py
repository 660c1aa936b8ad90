from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ZonesConfig(AppConfig):
    name = "jingkong.zones"
    label = "zones"
    verbose_name = _("Zones (三区)")

    def ready(self) -> None:
        from jingkong.core.events import subscribe
        from jingkong.zones import jobs  # noqa: F401 - registers the job kinds
        from jingkong.zones.subscribers import (
            on_case_created,
            on_contacts,
            on_individual_positive,
            on_people_imported,
            on_person_changed,
        )

        subscribe("tracing.case_created", on_case_created)
        subscribe("tracing.contacts_identified", on_contacts)
        subscribe("tracing.contacts_raised", on_contacts)
        subscribe("testing.individual_positive", on_individual_positive)
        subscribe("people.person_created", on_person_changed)
        subscribe("people.person_updated", on_person_changed)
        subscribe("people.imported", on_people_imported)
