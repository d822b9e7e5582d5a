"""Settings: options > CASEJOBS_* environment > config file > defaults; every setting documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs import REGISTRY  # noqa: F401 - declares every job's settings
from lib.errors import ConfigError
from lib.settings import PROJECT_ROOT, all_settings, load_settings


def test_defaults_need_no_editing(tmp_path: Path) -> None:
    settings = load_settings({}, {})
    assert settings.home == PROJECT_ROOT / "var"
    assert settings.database_path == PROJECT_ROOT / "var" / "casejobs.db"
    assert settings.get("core.app_mode") == "desktop"


def test_options_beat_environment_beat_file_beat_defaults(tmp_path: Path) -> None:
    (tmp_path / "casejobs.toml").write_text('log_format = "console"\nbusy_timeout_ms = 5\napp_mode = "server"\n')
    environment = {"CASEJOBS_HOME": str(tmp_path), "CASEJOBS_LOG_FORMAT": "json", "CASEJOBS_BUSY_TIMEOUT_MS": "7"}

    settings = load_settings({"core.log_format": "auto"}, environment)

    assert settings.get("core.log_format") == "auto"
    assert settings.sources["core.log_format"] == "--log-format"
    assert settings.get("core.busy_timeout_ms") == 7
    assert settings.get("core.app_mode") == "server"
    assert settings.get("core.max_runtime") is None


def test_the_applications_app_mode_is_read_when_ours_is_unset(tmp_path: Path) -> None:
    assert load_settings({}, {"CASEJOBS_HOME": str(tmp_path), "APP_MODE": "web"}).get("core.app_mode") == "web"
    environment = {"CASEJOBS_HOME": str(tmp_path), "APP_MODE": "web", "CASEJOBS_APP_MODE": "desktop"}
    assert load_settings({}, environment).get("core.app_mode") == "desktop"


def test_a_relative_database_is_resolved_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings({"core.db": "x.db"}, {}).database_path == tmp_path / "x.db"


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CASEJOBS_CONFIG"):
        load_settings({}, {"CASEJOBS_CONFIG": str(tmp_path / "missing.toml")})


def test_a_bad_number_names_its_variable_and_its_range() -> None:
    with pytest.raises(ConfigError, match="CASEJOBS_MAX_RUNTIME='soon': must be a whole number from 1 to 86400"):
        load_settings({}, {"CASEJOBS_MAX_RUNTIME": "soon"})


def test_a_bad_setting_stops_only_the_commands_that_use_it() -> None:
    settings = load_settings({}, {"CASEJOBS_SMTP_TIMEOUT": "0"})  # jobstats and jobctl read core and ops only
    with pytest.raises(ConfigError, match="CASEJOBS_SMTP_TIMEOUT='0': must be a whole number from 1 to 300"):
        settings.check(["smtp"])
    with pytest.raises(ConfigError):
        settings.get("smtp.timeout")
    settings.check(["core", "ecourts"])


def test_the_readme_lists_every_setting_with_its_variable_and_range() -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    for setting in all_settings():
        row = next(
            (line for line in readme.splitlines() if line.startswith(f"| `{setting.environment_variable}` |")), ""
        )
        assert row, setting.environment_variable
        assert f"| {setting.allowed} |" in row, (setting.environment_variable, setting.allowed)
