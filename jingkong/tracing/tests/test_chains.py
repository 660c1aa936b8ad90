"""Suggested links, tracer decisions, clusters (connected components) and interval estimates."""

from __future__ import annotations

import datetime as dt

import pytest

from jingkong.policy.schema import RulesIncomplete
from jingkong.tracing import chains, services
from jingkong.tracing.models import Case, Cluster, Link, Stay
from jingkong.tracing.tests.helpers import at, make_cases

pytestmark = pytest.mark.django_db


def _link(a: Case, b: Case) -> Link:
    return Link.objects.get(infector=a, infectee=b)


def test_an_earlier_case_of_the_same_household_is_suggested_as_infector(world):
    a, b = world.person("甲", household="H1"), world.person("乙", household="H1")
    case_b, case_a = make_cases((b, at(4, 9)), (a, at(2, 9)))  # found in the other order
    result = chains.links_suggest(case_ids=[case_b.pk])
    assert result["suggested"] == 1
    link = _link(case_a, case_b)
    assert (link.status, link.kind, link.confidence) == ("suggested", "household", "high")
    assert link.evidence[0]["household_id"] == world.households["H1"].pk
    # Suggesting again adds nothing.
    assert chains.links_suggest(case_ids=[case_a.pk, case_b.pk])["suggested"] == 0


def test_a_shared_venue_stay_inside_the_incubation_window_is_suggested_with_the_exposure_time(world):
    a, b, c = world.person("甲"), world.person("乙"), world.person("丙")
    shop = world.venue("S1")
    case_a, case_b, case_c = make_cases((a, at(3, 9)), (b, at(5, 9)), (c, at(5, 10)))
    now = at(5, 12)
    for case, start, end in ((case_a, at(2, 10), at(2, 11)), (case_b, at(2, 10, 30), at(2, 12)),
                             (case_c, at(2, 15), at(2, 16))):
        Stay.objects.create(case=case, kind="venue", venue=shop, start=start, end=end, source="checkin",
                            created_at=now, updated_at=now)
    chains.links_suggest(case_ids=[case_b.pk, case_c.pk])
    overlap = _link(case_a, case_b)
    assert (overlap.kind, overlap.confidence) == ("venue_overlap", "medium")
    assert overlap.exposure_at == at(2, 10, 45)  # the middle of the shared half hour
    same_day = _link(case_a, case_c)
    assert (same_day.kind, same_day.confidence) == ("venue_same_day", "low")


def test_cases_too_far_apart_are_not_linked(world):
    a, b = world.person("甲", household="H1"), world.person("乙", household="H1")
    case_a, case_b = make_cases((a, at(1, 9)), (b, at(1, 9) + dt.timedelta(days=15)))
    assert chains.links_suggest(case_ids=[case_b.pk])["suggested"] == 0


def test_a_case_found_among_another_cases_contacts_is_linked_to_it(world, lake):
    from jingkong.tracing.tests.helpers import write_checkins

    a, b = world.person("甲"), world.person("乙", side="b")
    shop = world.venue("S1")
    write_checkins(lake.root, [(a, shop, at(2, 10), at(2, 11)), (b, shop, at(2, 10), at(2, 10, 40))])
    (case_a,) = make_cases((a, at(3, 9)))
    services.find_run(case_ids=[case_a.pk])
    (case_b,) = make_cases((b, at(5, 9)))
    assert case_b.found_by == "contact_followup"
    services.find_run(case_ids=[case_b.pk])
    link = _link(case_a, case_b)
    assert link.kind == "contact_venue" and link.confidence == "medium"


def test_a_rejected_link_stays_rejected_and_a_confirmed_one_makes_a_cluster(world, tracer_a):
    a, b, c = (world.person(n, household="H1") for n in ("甲", "乙", "丙"))
    case_a, case_b, case_c = make_cases((a, at(1, 9)), (b, at(3, 9)), (c, at(4, 9)))
    chains.links_suggest(case_ids=[case_a.pk, case_b.pk, case_c.pk])
    assert Link.objects.count() == 3
    services.link_decide(actor=tracer_a, link=_link(case_a, case_c), status="rejected", note="乙 is the source")
    services.link_decide(actor=tracer_a, link=_link(case_a, case_b), status="confirmed")
    chains.links_suggest(case_ids=[case_a.pk, case_b.pk, case_c.pk])
    assert _link(case_a, case_c).status == "rejected"
    cluster = Cluster.objects.get(active=True)
    assert set(cluster.members.values_list("case_id", flat=True)) == {case_a.pk, case_b.pk}
    assert cluster.setting == "household" and cluster.region_code == "330206002001001"
    assert case_a.ref in cluster.name
    # The cluster grows and keeps its identity and a tracer's name.
    services.cluster_update(actor=tracer_a, cluster=cluster, name="某小区家庭聚集", setting="community")
    services.link_decide(actor=tracer_a, link=_link(case_b, case_c), status="confirmed")
    grown = Cluster.objects.get(active=True)
    assert grown.pk == cluster.pk and grown.members.count() == 3
    assert (grown.name, grown.setting) == ("某小区家庭聚集", "community")
    growth = chains.cluster_growth(grown)
    assert [g["size"] for g in growth] == [1, 2, 3] and growth[0]["date"] == "2022-01-01"
    # Rejecting the link that held it together splits it: the bigger part keeps the cluster.
    services.link_decide(actor=tracer_a, link=_link(case_a, case_b), status="rejected")
    remaining = Cluster.objects.get(active=True)
    assert remaining.pk == cluster.pk
    assert set(remaining.members.values_list("case_id", flat=True)) == {case_b.pk, case_c.pk}


def test_two_clusters_joined_by_a_link_merge_into_the_bigger(world, tracer_a):
    people = [world.person(f"p{i}") for i in range(5)]
    cases = make_cases(*[(p, at(1 + i, 9)) for i, p in enumerate(people)])
    link = lambda i, j: services.link_create(actor=tracer_a, scope=_scope(), infector_ref=cases[i].ref,  # noqa: E731
                                             infectee_ref=cases[j].ref)
    link(0, 1), link(1, 2)
    big = Cluster.objects.get(active=True)
    link(3, 4)
    small = Cluster.objects.exclude(pk=big.pk).get(active=True)
    link(2, 3)
    assert list(Cluster.objects.filter(active=True)) == [big]
    assert big.members.count() == 5
    assert Cluster.objects.get(pk=small.pk).active is False


def _scope():
    from jingkong.access.guard import Scope

    return Scope("330206002")


def test_estimates_from_confirmed_links_with_sample_size(world, tracer_a):
    people = [world.person(f"p{i}") for i in range(7)]
    cases = make_cases(*[(p, at(1, 9)) for p in people])
    onsets = [1, 4, 6, 9, 11, 14, 15]
    for case, day in zip(cases, onsets, strict=True):
        Case.objects.filter(pk=case.pk).update(onset_date=dt.date(2022, 1, day))
    from jingkong.core import clock

    with clock.frozen(at(20, 12)):  # the interviews after the last onset (exposures in the future are refused)
        for i in range(1, 7):
            services.link_create(actor=tracer_a, scope=_scope(), infector_ref=cases[i - 1].ref,
                                 infectee_ref=cases[i].ref, exposure_at=at(onsets[i] - 3, 12))
    links = Link.objects.select_related("infector", "infectee")
    result = chains.estimates(links)
    serial = result["serial_interval_days"]
    assert serial["n"] == 6 and serial["sufficient"] is True
    assert serial["median"] == 2.5 and serial["min"] == 1 and serial["max"] == 3
    assert result["incubation_days"]["median"] == 3
    few = chains.estimates(links[:2])
    assert few["serial_interval_days"]["n"] == 2 and few["serial_interval_days"]["median"] is None


def test_a_profile_without_incubation_rules_refuses_suggestions_with_its_message(regions, now):
    import copy

    from jingkong.policy.services import builtin_documents, profile_install_builtin
    from jingkong.tracing.tests.helpers import World, activate

    name, doc = builtin_documents()[0]
    old = copy.deepcopy(doc)
    old["code"] = "cn-old-2021"
    old["rules"].pop("transmission")
    old["sources"].pop("transmission")
    profile_install_builtin(documents=[("cn-old-2021.json", old)])
    activate("cn-old-2021")
    world = World(regions)
    a, b = world.person("甲", household="H1"), world.person("乙", household="H1")
    case_a, case_b = make_cases((a, at(1, 9)), (b, at(3, 9)))
    with pytest.raises(RulesIncomplete, match="transmission"):
        chains.links_suggest(case_ids=[case_b.pk], strict=True)
    result = chains.links_suggest(case_ids=[case_b.pk])
    assert result["suggested"] == 0 and "transmission" in result["skipped"][0]["reason"]


def test_a_contact_relation_outside_the_incubation_window_suggests_no_link(world):
    """Regression: a contact relation was evidence for a link whatever its time (only shared venue stays were held to
    the incubation window): two cases who met after the later one was already infected were suggested as a chain."""
    from jingkong.core import clock
    from jingkong.tracing.models import Contact, ContactReason

    a, b = world.person("甲"), world.person("乙")
    case_a, case_b = make_cases((a, at(1, 9)), (b, at(4, 20)))
    now = clock.now()

    def met(case, person, start, end):
        contact, _ = Contact.objects.get_or_create(person=person, defaults=dict(
            tier="close", region_code=person.grid.code, queue_region_code=person.grid.code[:9],
            first_identified_at=now, created_at=now, updated_at=now))
        return ContactReason.objects.create(contact=contact, case=case, tier="close", kind="venue", key=str(start),
                                            exposure_start=start, exposure_end=end, created_at=now)

    reason = met(case_a, b, at(4, 10), at(4, 11))  # 10 hours before 乙's sampling: under the 1-day minimum
    assert chains.links_suggest(case_ids=[case_b.pk])["suggested"] == 0
    reason.delete()
    met(case_a, b, at(2, 10), at(2, 11))  # inside 乙's window (Dec 21 – Jan 3 20:00)
    assert chains.links_suggest(case_ids=[case_b.pk])["suggested"] == 1
    link = _link(case_a, case_b)
    assert (link.kind, link.exposure_at) == ("contact_venue", at(2, 11))
