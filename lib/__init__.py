"""casejobs: the shared mechanism every scheduled job stands on."""

import tomllib as _tomllib
from pathlib import Path as _Path

# The version lives once, in pyproject.toml.
with (_Path(__file__).resolve().parent.parent / "pyproject.toml").open("rb") as _handle:
    __version__: str = _tomllib.load(_handle)["project"]["version"]
