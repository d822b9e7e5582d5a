"""The Windows answers of lib/platforms.py, computed on any host: the home, the launchers, schtasks, the limits."""

from __future__ import annotations

from pathlib import Path, PureWindowsPath

import pytest

from lib.platforms import (
    default_home,
    kill_limit,
    schtasks_create,
    schtasks_delete,
    task_name,
    windows_launcher,
    windows_scripts_folder,
)


def test_the_windows_home_is_under_local_app_data() -> None:
    environ = {"LOCALAPPDATA": "C:\\Users\\asha\\AppData\\Local", "USERPROFILE": "C:\\Users\\asha"}
    assert default_home(Path("/x"), "nt", environ) == PureWindowsPath("C:\\Users\\asha\\AppData\\Local\\casejobs")
    assert default_home(Path("/x"), "nt", {"USERPROFILE": "C:\\Users\\asha"}) == PureWindowsPath(
        "C:\\Users\\asha\\AppData\\Local\\casejobs"
    )


def test_a_clone_keeps_its_home_in_var_and_an_installed_copy_in_the_users_data(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "_python").write_text("")
    assert default_home(tmp_path, "posix", {"HOME": "/home/asha"}) == tmp_path / "var"
    installed = tmp_path / "site-packages"
    assert default_home(installed, "posix", {"HOME": "/home/asha"}) == Path("/home/asha/.local/share/casejobs")
    assert default_home(installed, "posix", {"XDG_DATA_HOME": "/data"}) == Path("/data/casejobs")


@pytest.mark.parametrize(
    ("install", "scripts"),
    [
        ("C:\\casejobs", "C:\\casejobs\\.venv\\Scripts"),
        ("C:\\casejobs\\.venv", "C:\\casejobs\\.venv\\Scripts"),
        ("D:\\apps\\casejobs\\venv\\Scripts", "D:\\apps\\casejobs\\venv\\Scripts"),
    ],
)
def test_the_launchers_are_the_console_scripts_of_the_install(install: str, scripts: str) -> None:
    assert windows_scripts_folder(install) == PureWindowsPath(scripts)
    assert windows_launcher(install) == PureWindowsPath(scripts, "casejobs-run-job.exe")
    assert windows_launcher(install, "jobstats") == PureWindowsPath(scripts, "casejobs-jobstats.exe")


def test_schtasks_registers_and_removes_each_task_in_the_casejobs_folder() -> None:
    xml = PureWindowsPath("C:\\Users\\asha\\AppData\\Local\\casejobs\\export\\windows\\casejobs-daily-sync.xml")
    assert task_name("dailySync") == "\\casejobs\\dailySync"
    assert schtasks_create("dailySync", xml, "FIRM\\asha", "s4u") == [
        "schtasks", "/Create", "/XML", str(xml), "/TN", "\\casejobs\\dailySync", "/F",
    ]  # fmt: skip
    assert schtasks_create("dailySync", xml, "FIRM\\asha", "password")[-4:] == ["/RU", "FIRM\\asha", "/RP", "*"]
    assert schtasks_delete("slaCheck") == ["schtasks", "/Delete", "/TN", "\\casejobs\\slaCheck", "/F"]


@pytest.mark.parametrize("limit", [1, 59, 240, 1800, 7200, 10800, 86400])
def test_a_scheduler_kills_only_after_the_job_stopped_itself(limit: int) -> None:
    assert kill_limit(limit) >= limit + 60
    assert kill_limit(limit) * 10 >= limit * 11  # a tenth more, at least
