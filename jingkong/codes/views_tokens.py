"""The 亮码 page (/codes/show/): a resident shows their health code — colour, reasons, the date it may turn green and a
QR code of the signed token — after giving their resident ID number and the phone number in the registry.

Deliberately public (residents have no accounts). Protections:

* the ID number is validated first (GB 11643 check digit); an unknown ID number and a wrong phone number get the same
  answer, so the page cannot tell whether someone is registered;
* attempts are limited per client address: after :data:`FAILURES_PER_ADDRESS` failures within :data:`FAILURE_WINDOW`
  the address is refused until the window has passed (a counter over the audit log's failure records, like the login
  lockout — every process and every worker sees the same count); and per ID number, like the login's per-username
  lockout: after :data:`FAILURES_PER_ID` wrong phone numbers for one ID number within the window, that number is refused
  from every address (a guesser spread over many addresses cannot try phone numbers for one person). The failure
  records keep the keyed ID hash, never the number; an unregistered number is counted and refused exactly alike, so
  the lockout does not tell which numbers are registered;
* each display (and each renewal of the QR code) is audited as a read of the person, failures as ``codes.show_failed``.

After a match the page remembers the person in the visitor's session for :data:`SHOW_SESSION_SECONDS` (no account, no
cookie beyond the session) and renews the token before it expires (meta refresh); "Not me" forgets it.
"""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import segno
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache

from jingkong.access import audit
from jingkong.access.guard import public
from jingkong.access.models import AuditLog
from jingkong.codes import tokens
from jingkong.core import clock
from jingkong.core.exceptions import NotFound
from jingkong.people import idnumber

SESSION_KEY = "jk_code_person"
SHOW_SESSION_SECONDS = 2 * 3600
# Security tolerances of this page (not policy rules): like the login lockout in jingkong.access.selectors.
FAILURES_PER_ADDRESS = 10
FAILURES_PER_ID = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
RENEW_MARGIN_SECONDS = 45  # the page reloads this long before the token expires
SHOW_ACTION = "codes.show"
FAILED_ACTION = "codes.show_failed"
COLOURS = {"green": "#1b9e4b", "yellow": "#d9a300", "orange": "#e8710a", "red": "#d32f2f"}
_PHONE_DIGITS = re.compile(r"\D")


def _phone(value: str) -> str:
    """Digits only, without a +86/0086 country prefix (``138 0000-1234`` and ``+8613800001234`` are the same)."""
    digits = _PHONE_DIGITS.sub("", value or "")
    for prefix in ("0086", "86"):
        if digits.startswith(prefix) and len(digits) - len(prefix) == 11:
            digits = digits[len(prefix):]
    return digits


def _ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") or None


def address_locked(ip: str | None, *, now: dt.datetime) -> bool:
    if not ip:
        return False
    recent = AuditLog.objects.filter(action=FAILED_ACTION, at__gte=now - FAILURE_WINDOW, ip=ip)
    return recent.count() >= FAILURES_PER_ADDRESS


def id_locked(number_hash: str, *, now: dt.datetime) -> bool:
    recent = AuditLog.objects.filter(action=FAILED_ACTION, at__gte=now - FAILURE_WINDOW, object_type="codes.show",
                                     object_id=number_hash)
    return recent.count() >= FAILURES_PER_ID


def _failed(request, why: str, number_hash: str = "") -> None:
    audit.record(actor=None, action=FAILED_ACTION, object_type="codes.show", object_id=number_hash, request=request,
                 detail={"why": why})


def _match(number: str, phone: str):
    """The person with this ID number and this phone number, or None (the caller does not learn which part failed)."""
    from jingkong.people.models import Person

    person = Person.objects.select_related("grid").filter(id_hash=idnumber.id_hash(number)).first()
    given = _phone(phone)
    if person is None or not given or _phone(person.phone) != given:
        return None, ("unknown_id" if person is None else "wrong_phone")
    return person, ""


def _code_context(request, person) -> dict:
    """Issue a fresh token and build what the page shows; audited as a read of the person."""
    from jingkong.codes.models import HealthCode

    now = clock.now()
    token = tokens.issue(person, at=now)
    verified = tokens.verify(token, at=now)
    code = HealthCode.objects.get(person_id=person.pk)
    audit.record(actor=None, action=SHOW_ACTION, object_type="people.person", object_id=person.pk,
                 region_code=person.grid.code if person.grid else "", request=request,
                 detail={"kid": verified.kid, "colour": code.colour, "expires_at": verified.expires_at.isoformat()})
    colour = code.colour
    qr = segno.make(token, error="m").svg_inline(scale=1, dark=COLOURS.get(colour, "#000"), light="#fff", border=2,
                                                 omitsize=True, svgclass="cd-qr-svg")
    tz = ZoneInfo(clock.local_time_zone())
    reasons = []
    for r in code.reasons or []:
        if isinstance(r, dict):
            until = r.get("until")
            reasons.append({"text": _(str(r.get("reason") or r.get("rule") or "")), "colour": r.get("colour", ""),
                            "until": dt.date.fromisoformat(until) if isinstance(until, str) and until else None})
    remaining = int((verified.expires_at - now).total_seconds())
    return {
        "person_name": tokens.mask_name(person.name), "id_masked": person.id_masked, "colour": colour,
        "colour_label": {"green": _("Green code"), "yellow": _("Yellow code"), "orange": _("Orange code"),
                         "red": _("Red code")}.get(colour, colour),
        "colour_hex": COLOURS.get(colour, "#555"), "reasons": reasons, "green_on": code.green_on, "qr_svg": qr,
        "token": token, "issued_local": verified.issued_at.astimezone(tz), "expires_local": verified.expires_at.astimezone(tz),
        "refresh_seconds": max(15, remaining - RENEW_MARGIN_SECONDS), "overridden": code.overridden,
    }


def _form(request, *, error: str = "", status: int = 200, id_number: str = ""):
    return render(request, "codes/show_form.html", {"error": error, "id_number": id_number}, status=status)


@public
@never_cache
def show(request):
    """亮码: the form (ID number + phone), then the code of the person they match."""
    if request.method == "POST":
        if request.POST.get("action") == "forget":
            request.session.pop(SESSION_KEY, None)
            return HttpResponseRedirect(reverse("codes:show"))
        return _submit(request)
    person_id = request.session.get(SESSION_KEY)
    if not person_id:
        return _form(request)
    from jingkong.people.models import Person

    person = Person.objects.select_related("grid").filter(pk=person_id).first()
    if person is None:
        request.session.pop(SESSION_KEY, None)
        return _form(request)
    from jingkong.policy.schema import RulesIncomplete
    from jingkong.policy.selectors import PolicyNotActive

    try:
        context = _code_context(request, person)
    except (RulesIncomplete, PolicyNotActive):
        return render(request, "codes/show_unavailable.html",
                      {"message": _("Health codes are not available at the moment. Please try again later.")},
                      status=503)
    except NotFound:
        return render(request, "codes/show_unavailable.html",
                      {"message": _("Your health code has not been computed yet. Please try again in a few minutes.")},
                      status=404)
    return render(request, "codes/show_code.html", context)


def _submit(request):
    now = clock.now()
    raw_id = (request.POST.get("id_number") or "")[:64]
    phone = (request.POST.get("phone") or "")[:32]
    if address_locked(_ip(request), now=now):
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        return _form(request, status=429, error=_(
            "Too many attempts from this connection. Please try again in %(minutes)d minutes.") % {"minutes": minutes})
    if "\x00" in raw_id or "\x00" in phone:
        _failed(request, "bad_id")
        return _form(request, status=422, error=_("This is not a valid resident ID number."))
    try:
        number = idnumber.validate(raw_id, today=clock.today())
    except idnumber.IdNumberError:
        _failed(request, "bad_id")
        return _form(request, status=422, id_number=raw_id,
                     error=_("This is not a valid resident ID number (check the 18 characters, the last may be X)."))
    number_hash = idnumber.id_hash(number)
    if id_locked(number_hash, now=now):
        _failed(request, "id_locked", number_hash)
        minutes = int(FAILURE_WINDOW.total_seconds() // 60)
        return _form(request, status=429, id_number=raw_id, error=_(
            "Too many attempts for this ID number. Please try again in %(minutes)d minutes, or ask your community "
            "(grid) worker.") % {"minutes": minutes})
    person, why = _match(number, phone)
    if person is None:
        _failed(request, why, number_hash)
        return _form(request, status=403, id_number=raw_id, error=_(
            "The ID number and the phone number do not match our records. Use the phone number you registered "
            "with, or ask your community (grid) worker."))
    request.session.cycle_key()
    request.session[SESSION_KEY] = person.pk
    request.session.set_expiry(SHOW_SESSION_SECONDS)
    return HttpResponseRedirect(reverse("codes:show"))
