"""The parity tier: kascade's static planner against dbt itself (`dbt ls`), on generated
projects. PARITY_PROJECTS scales how many (default sized for CI)."""

from __future__ import annotations

import os

PROJECTS = int(os.environ.get("PARITY_PROJECTS", "6"))
