"""What encryption, the off-site copy and the restore drill cost, on the busy shape.

Three measurements, interleaved, on a copy of nothing: the plain nightly backup
(quick_check), the same encrypted to one age recipient with an off-site folder
on this disk (so the copy's cost is the read, write, fsync and read-back, not a
network), and backupDrill with its identity (decrypt, verify every member,
restore database.db, full integrity_check, count every table and export).
No goal was set for these (issue 13); the figures are in the README.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from pyrage import x25519

from bench.bench_backup import job_command, quick_night
from bench.common import PROJECT, WORK, measure, scale_home, summarise

RUNS = 2


def key_files(folder: Path) -> tuple[Path, str]:
    """A fresh age identity file (0600) and its recipient."""
    identity = x25519.Identity.generate()
    path = folder / "drill.key"
    path.write_text(f"{identity}\n")
    path.chmod(0o600)
    return path, str(identity.to_public())


def main(shape: str = "busy") -> dict[str, object]:
    print(f"encrypted and off-site backups, and the drill ({shape})", flush=True)
    home = scale_home(shape)
    scratch = WORK / "offsite"
    shutil.rmtree(scratch, ignore_errors=True)
    (scratch / "nas").mkdir(parents=True)
    (scratch / "nas" / ".casejobs-offsite").write_text("bench\n")
    identity, recipient = key_files(scratch)
    plain = quick_night(home)
    encrypted = {
        **plain,
        "CASEJOBS_BACKUP_ENCRYPT_TO": recipient,
        "CASEJOBS_BACKUP_OFFSITE_DIR": str(scratch / "nas"),
        "CASEJOBS_BACKUP_DRILL_IDENTITY": str(identity),
    }
    drill = [str(PROJECT / "bin" / "backup-drill"), "--log-format", "json"]
    plain_runs, encrypted_runs, drill_runs = [], [], []
    try:
        for _ in range(RUNS):
            plain_runs.append(measure(job_command(), plain))
            encrypted_runs.append(measure(job_command(), encrypted))
            drill_runs.append(measure(drill, encrypted))
    finally:
        for path in (home / "backups").glob("casejobs-backup-*.zip.age*"):
            path.unlink()  # the plain package stays, as the other benchmarks leave it
        shutil.rmtree(scratch, ignore_errors=True)
    results = {
        "plain": summarise(f"{shape}: bin/nightly-backup --force (clear, quick_check)", plain_runs),
        "encrypted_offsite": summarise(f"{shape}: the same, encrypted and copied off-site", encrypted_runs),
        "drill": summarise(f"{shape}: bin/backup-drill with its identity", drill_runs),
    }
    return results


if __name__ == "__main__":
    main()
