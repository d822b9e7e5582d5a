"""casejobs: the shared mechanism every scheduled job stands on."""

import tomllib as _tomllib
from importlib import metadata as _metadata
from pathlib import Path as _Path

_PYPROJECT = _Path(__file__).resolve().parent.parent / "pyproject.toml"

# The version lives once, in pyproject.toml (an installed copy reads it from its metadata).
if _PYPROJECT.exists():
    with _PYPROJECT.open("rb") as _handle:
        __version__: str = _tomllib.load(_handle)["project"]["version"]
else:
    __version__ = _metadata.version("casejobs")
