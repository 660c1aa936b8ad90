"""Route-walk registrations of the token routes (loaded by jingkong/access/tests/test_route_guard.py and
test_scope_writes.py).

* ``/codes/show/`` (亮码) is a deliberately public page: residents have no accounts; it answers only to a matching ID
  number + registered phone number, rate-limited per client address, and audits every display.
* ``GET /api/v1/codes/keys`` is deliberately public: the public keys devices verify tokens with offline (no personal
  data). Listed in ``PUBLIC_API``: the walker skips its 401/403 checks once it honours PUBLIC_API (a change asked of the
  lead; until then the walk reports this route).
"""

from __future__ import annotations

from jingkong.access.roles import Role
from jingkong.access.tests.test_route_guard import PUBLIC_PAGES

PUBLIC_PAGES["codes:show"] = ("亮码: residents show their own health code after giving their ID number and registered "
                              "phone number (same answer for an unknown ID or a wrong phone; rate-limited per address; "
                              "every display audited)")

PUBLIC_API = {
    "GET /api/v1/codes/keys": "the public keys devices verify code tokens with offline (no personal data)",
}

NOT_REGION_WRITES = {
    "POST /api/v1/codes/keys/rotate": "the signing keys belong to the whole platform (district-wide users only)",
    "POST /api/v1/codes/lookup": "verifies a token the holder presents: not region-limited by design (issue 5)",
}


def _resident_b_id_number(w) -> dict:
    return {"id_number": w["resident_b"]["id_number"]}


WRITES_NAMING_B = {
    "POST /api/v1/codes/lookup/id-number": (Role.CHECKPOINT_OFFICER, _resident_b_id_number),
}
