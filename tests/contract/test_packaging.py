"""pyproject.toml asks only for what its dependencies provide."""

from __future__ import annotations

import importlib.metadata
import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.processes import REPO


def test_every_extra_requested_of_a_dependency_exists():
    # pip only warns ("does not provide the extra") and installs without it.
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    missing = []
    for spec in project["dependencies"]:
        requirement = Requirement(spec)
        if not requirement.extras or (requirement.marker and not requirement.marker.evaluate()):
            continue
        provided = importlib.metadata.metadata(requirement.name).get_all("Provides-Extra") or []
        known = {canonicalize_name(extra) for extra in provided}
        missing += [
            f"{requirement.name}[{extra}]"
            for extra in requirement.extras
            if canonicalize_name(extra) not in known
        ]
    assert missing == []
