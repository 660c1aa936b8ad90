"""``jingkong transfer group`` and ``jingkong transfer plan``."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_group_and_plan_from_the_command_line(regions, capsys):
    from jingkong.core import clock
    from jingkong.isolation.models import Transfer, TransferBatch
    from jingkong.isolation.tests.transfer_world import NOW, TransferWorld, activate

    with clock.frozen(NOW):
        activate()
        w = TransferWorld(regions)
        for i in range(3):
            w.contact(w.person(f"密接{i}", household="H1"))
        w.facility("HOTEL1", rooms=5)
        w.vehicle("V1", seats=6)
        call_command("transfer_group", region="330206002")
        assert "3 people in 1 batches" in capsys.readouterr().out
        call_command("transfer_plan", region="330206002", time_limit=1.0)
        out = capsys.readouterr().out
    assert "1 runs for 3 people" in out
    assert Transfer.objects.count() == 1 and TransferBatch.objects.get().status == "planned"
    with pytest.raises(CommandError):
        call_command("transfer_plan", region="abc")
