"""[schedule] values: crontab lines and "every N" intervals, in the configured time zone."""

from __future__ import annotations

from datetime import datetime

import pytest

from jobs import registry, schedule, status
from triage.config import Config, Secrets
from triage.context import Context
from triage.errors import ConfigError

UTC = schedule.zone("UTC")


def test_interval_slots_are_aligned_so_every_replica_agrees() -> None:
    trig = schedule.trigger("sync", "every 15m", UTC)
    assert schedule.next_run(trig, datetime(2025, 3, 4, 10, 7, 31)) == datetime(2025, 3, 4, 10, 15)
    assert schedule.next_run(trig, datetime(2025, 3, 4, 10, 15)) == datetime(2025, 3, 4, 10, 30)


@pytest.mark.parametrize(
    ("expr", "seconds"),
    [("every 30s", 30), ("every 15m", 900), ("every 2h", 7200), ("every 1d", 86400)],
)
def test_interval_units(expr: str, seconds: float) -> None:
    assert schedule.interval_seconds(expr) == seconds


def test_cron_runs_in_the_configured_time_zone() -> None:
    paris = schedule.zone("Europe/Paris")
    trig = schedule.trigger("digest", "0 9 * * MON-FRI", paris)
    # Friday 2025-03-07 10:00 UTC is 11:00 in Paris: the next digest is Monday 09:00 Paris.
    assert schedule.next_run(trig, datetime(2025, 3, 7, 10, 0)) == datetime(2025, 3, 10, 8, 0)


def test_crontab_weekday_numbers_mean_what_crontab_means() -> None:
    # APScheduler 3 counts 0 as Monday; crontab counts 0 (and 7) as Sunday.
    trig = schedule.trigger("digest", "0 9 * * 1-5", UTC)
    saturday = datetime(2025, 3, 8, 12, 0)
    assert schedule.next_run(trig, saturday) == datetime(2025, 3, 10, 9, 0)  # Monday
    sunday_only = schedule.trigger("x", "30 6 * * 0", UTC)
    assert schedule.next_run(sunday_only, saturday) == datetime(2025, 3, 9, 6, 30)


def test_off_switches_a_job_off() -> None:
    assert schedule.trigger("themes", "off", UTC) is None
    assert schedule.next_run(None) is None


@pytest.mark.parametrize("expr", ["every 15 parsecs", "0 9 * *", "61 * * * *", "every 0s"])
def test_bad_values_are_one_line_config_errors_naming_the_job(expr: str) -> None:
    with pytest.raises(ConfigError, match=r"\[schedule\] sync"):
        schedule.trigger("sync", expr, UTC)


def test_unknown_time_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="timezone 'Mars/Olympus'"):
        schedule.zone("Mars/Olympus")


def test_slots_name_the_scheduled_instant_in_utc() -> None:
    paris = schedule.zone("Europe/Paris")
    assert schedule.slot_name(datetime(2025, 3, 10, 9, 0, tzinfo=paris)) == "2025-03-10T08:00:00Z"


def _ctx(**sections: object) -> Context:
    return Context(config=Config.model_validate(sections), secrets=Secrets())


def test_overview_shows_next_runs_and_why_jobs_are_off() -> None:
    ctx = _ctx(schedule={"themes": "off"}, labels={"apply": False})
    overview = status.schedule_overview(ctx)
    assert overview["sync"]["next_run"] is not None
    assert overview["themes"] == {
        "schedule": "off",
        "off": "[schedule] themes = off",
        "next_run": None,
    }
    assert overview["labels"]["off"] == "[labels] apply = false"


def test_selecting_an_unknown_job_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown job 'synk'"):
        registry.select_jobs(_ctx(), ["synk"])
