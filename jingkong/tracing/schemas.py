"""In/Out schemas of the tracing API. Times are ISO 8601 with a time zone (stored and answered in UTC)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from ninja import Schema
from pydantic import AfterValidator, Field

from jingkong.people.idnumber import phone_mask
from jingkong.tracing.models import Case, Contact, ContactReason, Handoff, Link, Stay

ClassificationT = Literal["confirmed", "asymptomatic"]
SeverityT = Literal["", "mild", "moderate", "severe", "critical"]
FoundByT = Literal["routine_screening", "round", "fever_clinic", "quarantine_test", "contact_followup", "other"]
SourceT = Literal["imported", "local", "unknown"]
CaseStatusT = Literal["investigating", "investigated", "closed"]
StayKindT = Literal["home", "workplace", "venue", "transport", "other"]
TransportT = Literal["", "flight", "train", "bus", "ship", "metro", "taxi", "other"]
ContactStatusT = Literal["notified", "located", "handed_over", "in_quarantine", "closed"]
SettingT = Literal["household", "workplace", "venue", "transport", "community", "mixed", "unknown"]
TierT = Literal["close", "secondary", "companion"]
# Filters (query parameters): "" is "any"; an unknown value is a 422 naming the parameter, not an empty answer.
CaseStatusFilterT = Literal["", "investigating", "investigated", "closed"]
ClassificationFilterT = Literal["", "confirmed", "asymptomatic"]
TierFilterT = Literal["", "close", "secondary", "companion"]
ContactStatusFilterT = Literal["", "identified", "notified", "located", "handed_over", "in_quarantine", "closed"]
HandoffStatusFilterT = Literal["", "requested", "accepted"]
LinkStatusFilterT = Literal["", "suggested", "confirmed", "rejected"]


def _no_nul(value: str) -> str:
    """PostgreSQL text cannot hold NUL characters (a DataError, i.e. a 500): refused at the door."""
    if "\x00" in value:
        raise ValueError("contains a NUL character")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
# A region code filter: digits only (division codes), at most 15 of them.
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{0,15}$")]


# --- cases ------------------------------------------------------------------------------------------------------------


class CaseOut(Schema):
    id: int
    ref: str
    person_id: int
    name: str
    id_masked: str
    classification: str
    severity: str
    onset_date: dt.date | None
    first_positive_at: dt.datetime | None
    found_by: str
    source_category: str
    variant: str
    current_place: str
    isolated_at: dt.datetime | None
    status: str
    region_code: str
    tracer: str | None
    note: str
    created_at: dt.datetime
    contacts_found_at: dt.datetime | None


def case_out(case: Case) -> dict:
    return {
        "id": case.pk, "ref": case.ref, "person_id": case.person_id, "name": case.person.name,
        "id_masked": case.person.id_masked, "classification": case.classification, "severity": case.severity,
        "onset_date": case.onset_date, "first_positive_at": case.first_positive_at, "found_by": case.found_by,
        "source_category": case.source_category, "variant": case.variant, "current_place": case.current_place,
        "isolated_at": case.isolated_at, "status": case.status, "region_code": case.region_code,
        "tracer": case.tracer.username if case.tracer_id else None, "note": case.note, "created_at": case.created_at,
        "contacts_found_at": case.contacts_found_at,
    }


class ElsewhereOut(Schema):
    region_code: str
    region_name: str
    contacts: int
    by_tier: dict[str, int]
    handoffs_requested: int
    handoffs_accepted: int


class CaseDetailOut(CaseOut):
    contacts_by_tier: dict[str, int]
    contacts_elsewhere: list[ElsewhereOut]
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    lookback_days: int | None
    policy_profile: str | None
    cluster_id: int | None


class CasePage(Schema):
    count: int
    page: int
    page_size: int
    items: list[CaseOut]


class CaseCreateIn(Schema):
    person_id: int
    classification: ClassificationT = "confirmed"
    severity: SeverityT = ""
    onset_date: dt.date | None = None
    first_positive_at: dt.datetime | None = Field(None, description="First positive sampling time, with time zone.")
    found_by: FoundByT = "other"
    source_category: SourceT = "unknown"
    variant: Text = Field("", max_length=32, description="Variant flag (e.g. Delta): longer look-back if the profile has one.")
    current_place: Text = Field("", max_length=255)
    isolated_at: dt.datetime | None = None
    note: Text = Field("", max_length=4000)


class CaseUpdateIn(Schema):
    classification: ClassificationT | None = None
    severity: SeverityT | None = None
    onset_date: dt.date | None = None
    first_positive_at: dt.datetime | None = None
    found_by: FoundByT | None = None
    source_category: SourceT | None = None
    variant: Text | None = Field(None, max_length=32)
    current_place: Text | None = Field(None, max_length=255)
    isolated_at: dt.datetime | None = None
    status: CaseStatusT | None = None
    note: Text | None = Field(None, max_length=4000)
    tracer: Text | None = Field(None, max_length=150, description="Username of the tracer in charge ('' to unassign).")


# --- timeline ---------------------------------------------------------------------------------------------------------


class StayOut(Schema):
    id: int
    kind: str
    venue_code: str
    venue_name: str | None
    place: str
    start: dt.datetime
    end: dt.datetime
    transport_mode: str
    transport_number: str
    carriage: str
    seat: str
    source: str
    flags: list[str]
    publish: bool
    public_label: str
    note: str


def stay_out(stay: Stay) -> dict:
    flags = [name for name, on in (("overlap", stay.flag_overlap), ("inverted", stay.flag_inverted),
                                   ("unknown_venue", stay.flag_unknown_venue)) if on]
    return {
        "id": stay.pk, "kind": stay.kind, "venue_code": stay.venue.code if stay.venue_id else stay.venue_code,
        "venue_name": stay.venue.name if stay.venue_id else None, "place": stay.place, "start": stay.start,
        "end": stay.end, "transport_mode": stay.transport_mode, "transport_number": stay.transport_number,
        "carriage": stay.carriage, "seat": stay.seat, "source": stay.source, "flags": flags, "publish": stay.publish,
        "public_label": stay.public_label, "note": stay.note,
    }


class StayIn(Schema):
    kind: StayKindT
    start: dt.datetime = Field(description="With a time zone, e.g. 2022-01-02T10:00:00+08:00.")
    end: dt.datetime
    venue_code: Text = Field("", max_length=40, description="Venue code (场所码); must be known to the base map.")
    place: Text = Field("", max_length=255)
    transport_mode: TransportT = ""
    transport_number: Text = Field("", max_length=32)
    carriage: Text = Field("", max_length=16)
    seat: Text = Field("", max_length=16)
    publish: bool = True
    public_label: Text = Field("", max_length=128)
    note: Text = Field("", max_length=4000)
    accept_overlap: bool = Field(False, description="Keep the entry although it overlaps another outing (flagged).")


class StayUpdateIn(Schema):
    kind: StayKindT | None = None
    start: dt.datetime | None = None
    end: dt.datetime | None = None
    venue_code: Text | None = Field(None, max_length=40)
    place: Text | None = Field(None, max_length=255)
    transport_mode: TransportT | None = None
    transport_number: Text | None = Field(None, max_length=32)
    carriage: Text | None = Field(None, max_length=16)
    seat: Text | None = Field(None, max_length=16)
    publish: bool | None = None
    public_label: Text | None = Field(None, max_length=128)
    note: Text | None = Field(None, max_length=4000)
    accept_overlap: bool = False


# --- contacts ---------------------------------------------------------------------------------------------------------


class ReasonOut(Schema):
    case_ref: str
    tier: str
    kind: str
    via_contact_id: int | None
    evidence: dict
    exposure_start: dt.datetime | None
    exposure_end: dt.datetime | None
    active: bool


def reason_out(r: ContactReason) -> dict:
    return {"case_ref": r.case.ref, "tier": r.tier, "kind": r.kind, "via_contact_id": r.via_contact_id,
            "evidence": r.evidence, "exposure_start": r.exposure_start, "exposure_end": r.exposure_end,
            "active": r.active}


class ContactOut(Schema):
    id: int
    person_id: int
    name: str
    id_masked: str
    phone: str
    tier: str
    status: str
    region_code: str
    queue_region_code: str
    last_exposure_at: dt.datetime | None
    first_identified_at: dt.datetime
    due_at: dt.datetime | None
    handed_to: str
    close_reason: str
    handoff_pending: bool
    reasons: list[ReasonOut]


def contact_out(c: Contact, reasons: list[ContactReason], *, show_phone: bool) -> dict:
    return {
        "id": c.pk, "person_id": c.person_id, "name": c.person.name, "id_masked": c.person.id_masked,
        "phone": c.person.phone if show_phone else phone_mask(c.person.phone), "tier": c.tier, "status": c.status,
        "region_code": c.region_code, "queue_region_code": c.queue_region_code, "last_exposure_at": c.last_exposure_at,
        "first_identified_at": c.first_identified_at, "due_at": c.due_at, "handed_to": c.handed_to,
        "close_reason": c.close_reason, "handoff_pending": bool(getattr(c, "handoff_pending", False)),
        "reasons": [reason_out(r) for r in reasons],
    }


class ContactPage(Schema):
    count: int
    page: int
    page_size: int
    items: list[ContactOut]


class CaseContactsOut(Schema):
    count: int
    items: list[ContactOut]
    elsewhere: list[ElsewhereOut]


class ContactFlagIn(Schema):
    person_id: int | None = Field(None, description="A person in your region…")
    id_number: Text | None = Field(None, max_length=32, description="…or anyone's ID number (sent in the body only).")
    exposure_start: dt.datetime | None = None
    exposure_end: dt.datetime | None = None
    relation: Text = Field("", max_length=64, description="E.g. shared meal, carer, colleague in the same office.")
    note: Text = Field("", max_length=1000)


class ContactFlagOut(Schema):
    contact_id: int
    tier: str
    in_your_region: bool
    handed_to_region: str | None


class ContactStatusIn(Schema):
    status: ContactStatusT
    handed_to: Literal["", "grouping", "transfer"] = ""
    note: Text = Field("", max_length=1000)
    at: dt.datetime | None = Field(None, description="When it happened (default: now).")


class HandoffOut(Schema):
    id: int
    contact_id: int
    case_ref: str | None
    from_region_code: str
    to_region_code: str
    status: str
    requested_at: dt.datetime
    accepted_at: dt.datetime | None
    accepted_by: str | None
    contact_tier: str
    contact_status: str
    name: str | None
    id_masked: str | None


def handoff_out(h: Handoff, *, show_person: bool) -> dict:
    c = h.contact
    return {
        "id": h.pk, "contact_id": h.contact_id, "case_ref": h.case.ref if h.case_id else None,
        "from_region_code": h.from_region_code, "to_region_code": h.to_region_code, "status": h.status,
        "requested_at": h.requested_at, "accepted_at": h.accepted_at,
        "accepted_by": h.accepted_by.username if h.accepted_by_id else None, "contact_tier": c.tier,
        "contact_status": c.status, "name": c.person.name if show_person else None,
        "id_masked": c.person.id_masked if show_person else None,
    }


# --- links and clusters -----------------------------------------------------------------------------------------------


class LinkOut(Schema):
    id: int
    infector_id: int
    infector_ref: str
    infectee_id: int
    infectee_ref: str
    status: str
    kind: str
    confidence: str
    evidence: list
    exposure_at: dt.datetime | None
    suggested_at: dt.datetime | None
    decided_by: str | None
    decided_at: dt.datetime | None
    note: str


def link_out(link: Link) -> dict:
    return {
        "id": link.pk, "infector_id": link.infector_id, "infector_ref": link.infector.ref,
        "infectee_id": link.infectee_id, "infectee_ref": link.infectee.ref, "status": link.status, "kind": link.kind,
        "confidence": link.confidence, "evidence": link.evidence, "exposure_at": link.exposure_at,
        "suggested_at": link.suggested_at, "decided_by": link.decided_by.username if link.decided_by_id else None,
        "decided_at": link.decided_at, "note": link.note,
    }


class LinkDecideIn(Schema):
    note: Text = Field("", max_length=1000)
    exposure_at: dt.datetime | None = Field(None, description="The likely exposure, if the interview tells.")


class LinkCreateIn(Schema):
    infector_ref: Text = Field(max_length=32)
    infectee_ref: Text = Field(max_length=32)
    note: Text = Field("", max_length=1000)
    exposure_at: dt.datetime | None = None


class SuggestOut(Schema):
    suggested: int
    skipped: list[dict]
    links: list[LinkOut]


class ClusterOut(Schema):
    id: int
    name: str
    setting: str
    region_code: str
    active: bool
    size: int
    members: list[str]
    growth: list[dict]


class ClusterUpdateIn(Schema):
    name: Text | None = Field(None, max_length=128)
    setting: SettingT | None = None


class GraphOut(Schema):
    nodes: list[dict]
    edges: list[dict]


class EstimatesOut(Schema):
    links: int
    serial_interval_days: dict
    incubation_days: dict


class NoticeOut(Schema):
    case: str
    classification: str
    residence_community: str
    generated_at: str
    time_zone: str
    items: list[dict]
