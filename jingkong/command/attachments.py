"""Directive attachments: typed links kept on the directive and resolved for each task's own region.

* ``{"type": "untested_list", "campaign_id": N}`` — the untested list of the task's region in that testing round
  (the printable sweep page and its CSV);
* ``{"type": "contact_queue"}`` — the contacts to locate in the task's region (the tracing queue and its API list);
* ``{"type": "link", "url": "/path or https://…", "label": "…"}`` — any other document.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.urls import reverse
from django.utils.translation import gettext as _

from jingkong.access.guard import Scope
from jingkong.core.exceptions import ValidationFailed

TYPES = ("untested_list", "contact_queue", "link")
MAX_ATTACHMENTS = 20


def _bad(n: int, message: str) -> ValidationFailed:
    return ValidationFailed(f"attachments[{n}]: {message}", extra={"field": "attachments"})


def validate(items: list[dict], *, scope: Scope) -> list[dict]:
    """Check and normalise attachments given by the issuer (campaigns must be visible to them)."""
    from jingkong.analytics.coverage import campaign_visible
    from jingkong.testing.models import Campaign

    if len(items) > MAX_ATTACHMENTS:
        raise ValidationFailed(f"at most {MAX_ATTACHMENTS} attachments", extra={"field": "attachments"})
    out = []
    for n, item in enumerate(items):
        kind = item.get("type")
        if kind == "untested_list":
            campaign_id = item.get("campaign_id")
            if not isinstance(campaign_id, int) or isinstance(campaign_id, bool) or not 0 < campaign_id < 2**62:
                raise _bad(n, "campaign_id must be a campaign number")
            campaign = Campaign.objects.filter(pk=campaign_id).first()
            if campaign is None or not campaign_visible(campaign, scope):
                raise _bad(n, f"no campaign {campaign_id}")
            out.append({"type": kind, "campaign_id": campaign.pk, "campaign_code": campaign.code})
        elif kind == "contact_queue":
            out.append({"type": kind})
        elif kind == "link":
            url = str(item.get("url") or "").strip()
            label = str(item.get("label") or "").strip()[:200]
            if not (url.startswith("/") and not url.startswith("//") or url.startswith("https://")) or len(url) > 1000 \
                    or any(c in url for c in "\x00\r\n\t\"'<> \\") or not url.isprintable():
                raise _bad(n, "url must be a path on this site (/…) or an https:// address")
            out.append({"type": kind, "url": url, "label": label or url})
        else:
            raise _bad(n, f"type must be one of {', '.join(TYPES)}")
    return out


def resolve(items: list[dict], region_code: str) -> list[dict]:
    """The attachments as links for one task region: ``{"type", "label", "url", "csv_url"?, "api_url"?}``."""
    out = []
    for item in items or []:
        kind = item.get("type")
        if kind == "untested_list" and item.get("campaign_id"):
            cid = item["campaign_id"]
            out.append({
                "type": kind,
                "label": _("Untested list of %(region)s (round %(code)s)") % {"region": region_code,
                                                                              "code": item.get("campaign_code", cid)},
                "url": reverse("testing:coverage_untested", args=[cid, region_code]),
                "csv_url": f"/api/v1/testing/campaigns/{cid}/untested.csv?" + urlencode({"region": region_code}),
            })
        elif kind == "contact_queue":
            out.append({
                "type": kind, "label": _("Contacts to locate in %(region)s") % {"region": region_code},
                "url": reverse("tracing:contact_queue") + "?" + urlencode({"region": region_code}),
                "api_url": "/api/v1/tracing/contacts?" + urlencode({"region": region_code, "open": "true"}),
            })
        elif kind == "link" and item.get("url"):
            out.append({"type": kind, "label": item.get("label") or item["url"], "url": item["url"]})
    return out
