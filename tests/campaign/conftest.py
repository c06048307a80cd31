"""The campaign tier: generated bad input, operator kills and an API server restart on
the real control plane (the integration tier's cluster, namespace and operator
fixtures). The API server restart goes last; the figures are printed at the end and
written to .artifacts/campaign.json."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.campaign.figures import ARTIFACT, FIGURES
from tests.integration.conftest import cluster, namespace, operator  # noqa: F401

HERE = Path(__file__).parent
LAST = "restarts_apiserver"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "campaign: the campaign tier (tests/campaign)")
    config.addinivalue_line(
        "markers", f"{LAST}: restarts the shared kube-apiserver; runs after everything else"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    ours = [item for item in items if HERE in Path(item.fspath).parents]
    for item in ours:
        item.add_marker(pytest.mark.campaign)
    last = [item for item in ours if item.get_closest_marker(LAST) is not None]
    items[:] = [item for item in items if item not in last] + last


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.empty:
        return
    terminalreporter.section("campaign figures")
    for line in FIGURES.lines():
        terminalreporter.write_line(line)
    terminalreporter.write_line(f"(written to {ARTIFACT})")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not FIGURES.empty:
        FIGURES.write()
