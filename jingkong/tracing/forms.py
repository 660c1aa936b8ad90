"""The timeline form of the case page: add or correct one stay (行程) after the interview.

Times are typed in local time (Asia/Shanghai, ``clock.local_time_zone()``) and stored as aware UTC. The form checks
only the shape of the input (choices, lengths, a readable time); every rule of a timeline entry — end after start,
known venue code, transport number, overlaps, times in the past — stays in ``services.stay_save``, whose 422 messages
the page shows next to the field they name.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from django import forms
from django.utils.translation import gettext_lazy as _

from jingkong.core import clock
from jingkong.tracing.models import Stay, StayKind, TransportMode

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"
INPUT_FORMATS = ("%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S")
# The fields a tracer edits, in the order services.stay_save knows them.
FIELDS = ("kind", "venue_code", "place", "start", "end", "transport_mode", "transport_number", "carriage", "seat",
          "publish", "public_label", "note")


def _no_nul(value: str) -> None:
    if "\x00" in (value or ""):
        raise forms.ValidationError(_("contains a NUL character"))


class LocalTimeField(forms.CharField):
    """A local date and time (``YYYY-MM-DD HH:MM``, or what a ``datetime-local`` input sends) → aware (local zone;
    not converted here: year 1 local lies before the calendar in UTC)."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT)

    def to_python(self, value):
        text = super().to_python(value).strip()
        if not text:
            return None
        for fmt in INPUT_FORMATS:
            try:
                naive = dt.datetime.strptime(text, fmt)
            except ValueError:
                continue
            return naive.replace(tzinfo=ZoneInfo(clock.local_time_zone()))  # stored as UTC when saved
        raise forms.ValidationError(_("not a date and time; write it as 2022-01-02 14:30 (local time)"))

    def prepare_value(self, value):
        if isinstance(value, dt.datetime):
            return value.astimezone(ZoneInfo(clock.local_time_zone())).strftime(LOCAL_FORMAT)
        return value


def _text(max_length: int, label, *, textarea: bool = False, **attrs) -> forms.CharField:
    widget = forms.Textarea(attrs={"rows": 2, **attrs}) if textarea else forms.TextInput(attrs=attrs)
    return forms.CharField(label=label, max_length=max_length, required=False, validators=[_no_nul], widget=widget,
                           strip=True)


class StayForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=StayKind.choices, initial=StayKind.VENUE)
    venue_code = _text(40, _("Venue code (场所码)"), size=14)
    place = _text(255, _("Place"), size=24)
    start = LocalTimeField(label=_("From (local time)"))
    end = LocalTimeField(label=_("To (local time)"))
    transport_mode = forms.ChoiceField(label=_("Transport"), choices=TransportMode.choices, required=False)
    transport_number = _text(32, _("Flight / train / bus number"), size=10)
    carriage = _text(16, _("Carriage"), size=4)
    seat = _text(16, _("Seat"), size=5)
    publish = forms.BooleanField(label=_("In the public notice"), required=False, initial=True)
    public_label = _text(128, _("Label in the public notice"), size=20)
    note = _text(4000, _("Note"), textarea=True, cols=40)
    accept_overlap = forms.BooleanField(label=_("Keep it although it overlaps another stay (both are flagged)"),
                                        required=False)

    @classmethod
    def for_stay(cls, stay: Stay, data=None) -> StayForm:
        initial = {name: getattr(stay, name) for name in FIELDS}
        if stay.venue_id:
            initial["venue_code"] = stay.venue.code
        return cls(data=data, initial=initial)

    def values(self, *, current: Stay | None = None) -> dict:
        """The cleaned values for services.stay_save; for an existing stay only what changed (the API's PATCH), so
        that correcting a note does not re-judge an unchanged drafted venue code."""
        out = {name: self.cleaned_data.get(name) for name in FIELDS}
        for name in ("venue_code", "place", "transport_mode", "transport_number", "carriage", "seat", "public_label",
                     "note"):
            out[name] = out[name] or ""
        if current is None:
            return out
        changed = {}
        for name, value in out.items():
            old = self.initial.get(name)
            if name in ("start", "end") and isinstance(old, dt.datetime) and value == old.replace(second=0,
                                                                                                  microsecond=0):
                continue  # shown to the minute: an untouched time keeps its seconds
            if value != old:
                changed[name] = value
        return changed
