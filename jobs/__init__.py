"""The registry: every job casejobs runs, declared once, each with its own settings beside it.

A job is one module here (jobs/<script with underscores>.py, holding its
`work` and its click `command`), one JobSpec below, and one line of
crontab.ist. The schedule, the exports, the pings, `jobctl status`,
`jobstats` and the settings all derive from these declarations; adding a job
touches nothing else (tests/integration/test_registry.py shows it).
"""

from __future__ import annotations

from lib.encryption import parse_recipients
from lib.jobspec import JobSpec, Registry
from lib.settings import (
    ECOURTS_URL,
    PATH,
    PRINTABLE_SECRET,
    SWITCH,
    Rule,
    Setting,
    decimal_number,
    one_of,
    whole_number,
)

AGE_RECIPIENTS = Rule(
    parse_recipients,
    "one or more age recipients (age1…) separated by spaces or commas, or the path of a file holding one a line",
)

DAILY_SYNC = JobSpec(
    name="dailySync",
    script="daily-sync",
    summary="Refresh open, non-confidential cases from eCourts: status, hearings, orders; notify lawyers of changes.",
    time_limit=2 * 3600,
    failure_severity="CRITICAL",
    work_figures=(("cases synced", "synced", None), ("failed", "failed", None), ("unchanged", "unchanged", None)),
    settings=(
        Setting(
            "ecourts", "base_url", None, ECOURTS_URL, "the aggregator's base URL; sim:// is the built-in simulator"
        ),
        Setting("ecourts", "token", None, PRINTABLE_SECRET, "the API token", secret=True),
        Setting("ecourts", "token_file", None, PATH, "file holding the API token, readable only by its owner"),
        Setting("ecourts", "connect_timeout", "5", whole_number(1, 300), "seconds to wait for a connection"),
        Setting("ecourts", "read_timeout", "30", whole_number(1, 600), "seconds to wait for an answer"),
        Setting(
            "ecourts",
            "rate_per_minute",
            "60",
            decimal_number(0.1, 60_000),
            "requests a minute at most (eCourtsIndia publishes 100 a minute)",
        ),
        Setting("ecourts", "concurrency", "1", whole_number(1, 10), "requests in flight at once"),
        Setting(
            "ecourts",
            "retries",
            "3",
            whole_number(0, 10),
            "retries of a request after a 429, 5xx, timeout or lost connection",
        ),
        Setting(
            "ecourts", "backoff_ms", "1000", whole_number(0, 600_000), "first backoff before a retry; doubles each time"
        ),
        Setting(
            "ecourts",
            "breaker_threshold",
            "5",
            whole_number(1, 1000),
            "cases failing upstream in a row that stop the run",
        ),
        Setting("sync", "max_cases", "100", whole_number(1, 100_000), "cases fetched per run at most"),
        Setting(
            "sync",
            "min_hours",
            "20",
            whole_number(0, 8760),
            "a case synced this recently is not fetched again (without --force)",
        ),
    ),
)

SLA_CHECK = JobSpec(
    name="slaCheck",
    script="sla-check",
    summary="Find SLA violations and warnings and send each responsible person one digest a day.",
    time_limit=1800,
    shared_sections=("smtp",),
    work_figures=(
        ("people with a digest", "notified_users", None),
        ("mails sent", "emails_sent", None),
        ("mails failed", "emails_failed", None),
    ),
    settings=(
        Setting(
            "sla",
            "warning_days",
            "3",
            whole_number(0, 365),
            "an item due today or within this many days is a warning",
        ),
        Setting(
            "sla",
            "digest_max_items",
            "50",
            whole_number(1, 10_000),
            "lines listed in one person's digest at most (most overdue first); the rest are totalled",
        ),
    ),
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

NIGHTLY_BACKUP = JobSpec(
    name="nightlyBackup",
    script="nightly-backup",
    summary="Write today's verified backup package (database, JSON exports, manifest) and apply the retention.",
    time_limit=3 * 3600,
    work_figures=(("package bytes", "size", None), ("compression ratio", "compression_ratio", None)),
    settings=(
        Setting("backup", "retention_days", "30", whole_number(1, 3650), "delete packages older than this many days"),
        Setting(
            "backup",
            "keep_newest",
            "7",
            whole_number(1, 1000),
            "never delete one of this many newest verified packages",
        ),
        Setting(
            "backup",
            "compression_level",
            "1",
            whole_number(0, 9),
            "deflate level of the package: 0 stores, 1 (fast) to 9 (ISA-L's levels 1 to 3)",
        ),
        Setting(
            "backup",
            "full_check_day",
            "sunday",
            one_of("every", *WEEKDAYS),
            "the IST weekday whose copy gets a full integrity_check (other nights a quick_check); every: each night",
        ),
        Setting(
            "backup",
            "encrypt_to",
            None,
            AGE_RECIPIENTS,
            "encrypt each package to these public keys (casejobs-backup-YYYY-MM-DD.zip.age); unset: no encryption",
        ),
        Setting(
            "backup",
            "offsite_dir",
            None,
            PATH,
            "a mounted folder (NAS share, USB disk, synced folder) that receives a checked copy of each package",
        ),
        Setting(
            "backup",
            "offsite_plaintext",
            "0",
            SWITCH,
            "1 allows an off-site copy without encryption (every client's data would leave the machine in clear)",
        ),
    ),
)

BACKUP_DRILL = JobSpec(
    name="backupDrill",
    script="backup-drill",
    summary="Restore the newest backup package (local or off-site) into a temporary folder and prove it sound.",
    time_limit=3 * 3600,
    shared_sections=("backup",),
    good_run_within_days=8,
    headline="last restore drill",
    work_figures=(("rows restored", "rows", None),),
    settings=(
        Setting(
            "backup",
            "drill_identity",
            None,
            PATH,
            "the age identity file (age-keygen's) the drill decrypts with; unset: it checks size and sha256 only",
        ),
    ),
)

USER_PENDING_REFRESH = JobSpec(
    name="userPendingRefresh",
    script="user-pending-refresh",
    summary="Recompute each active internal user's pending-work summary and workload level.",
    time_limit=240,
    work_figures=(
        ("users", "users", None),
        *((f"{level} workload", "workload_levels", level) for level in ("LOW", "MODERATE", "HIGH", "CRITICAL")),
    ),
)

WEEKLY_REPORT = JobSpec(
    name="weeklyReport",
    script="weekly-report",
    summary="Mail the one-page HTML report of the jobs (the last 30 days) to the ADMIN users.",
    time_limit=900,
    shared_sections=("smtp", "ops"),  # ops: the catch-up grace its health figures use
    work_figures=(("mails sent", "emails_sent", None),),
)

REGISTRY = Registry((DAILY_SYNC, SLA_CHECK, NIGHTLY_BACKUP, USER_PENDING_REFRESH, BACKUP_DRILL, WEEKLY_REPORT))
