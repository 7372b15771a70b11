"""Consent and oversight read their legal deadlines from the rule packs, not from constants."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from qorgau.consent.service import consent_for
from qorgau.core.errors import NotFound
from qorgau.core.settings import Settings
from qorgau.oversight.service import oversight_for
from qorgau.rules import deadlines, reload_rulebook, rulebook
from qorgau.rules.engine import default_pack_paths

PACKS = Path(deadlines.__file__).parent / "packs"
TODAY = date(2026, 11, 23)
NOW = datetime(2026, 11, 23, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("code, days", [
    (deadlines.WITHDRAWAL_STOP, 15), (deadlines.OBJECTION_DECISION, 3), (deadlines.BREACH_NOTICE, 1),
    (deadlines.RIGHTS_CORRECTION, 1), (deadlines.TRANSFER_NOTICE, 10), (deadlines.UNLAWFUL_PUBLIC_REMOVAL, 1)])
def test_every_deadline_the_modules_use_is_in_force_under_the_law(code, days):
    assert deadlines.working_days(code, TODAY) == days


def test_the_stricter_profile_stops_processing_immediately_after_withdrawal():
    assert deadlines.working_days(deadlines.WITHDRAWAL_STOP, TODAY, stricter=True) == 0
    assert deadlines.working_days(deadlines.OBJECTION_DECISION, TODAY, stricter=True) == 3


def test_objections_to_automated_decisions_have_no_deadline_before_article_19_1():
    with pytest.raises(NotFound):
        deadlines.working_days(deadlines.OBJECTION_DECISION, date(2025, 6, 2))


@pytest.fixture
def changed_law(tmp_path):
    """A copy of the built-in packs in which the objection deadline became 5 working days."""
    copy = tmp_path / "packs"
    shutil.copytree(PACKS, copy)
    pd = copy / "kz" / "pd-law.yaml"
    text = pd.read_text(encoding="utf-8")
    old = "{type: deadline, code: pd.objection_decision, working_days: 3}"
    assert old in text
    pd.write_text(text.replace(old, "{type: deadline, code: pd.objection_decision, working_days: 5}"), encoding="utf-8")
    before = rulebook()
    try:
        yield reload_rulebook([copy])
    finally:
        reload_rulebook(default_pack_paths())
        assert rulebook().digest == before.digest


def test_services_follow_the_packs_when_the_law_changes(platform, changed_law):
    assert oversight_for(platform).objection_working_days(NOW) == 5
    assert consent_for(platform).working_days(deadlines.WITHDRAWAL_STOP, NOW) == 15


def test_services_apply_the_stricter_profile_when_the_deployment_turns_it_on(tmp_path):
    from qorgau.core.platform import Platform

    strict = Platform.initialize(Settings(data_dir=tmp_path / "var", rules_stricter_profile=True,
                                          sth_interval_seconds=0))
    try:
        assert consent_for(strict).working_days(deadlines.WITHDRAWAL_STOP, NOW) == 0
        assert oversight_for(strict).objection_working_days(NOW) == 3
    finally:
        strict.close()
