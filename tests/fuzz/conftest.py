"""The fuzz tier: hypothesis over Flow manifests and project trees. Every command ends
with a documented exit code and a message, never a traceback, an internal error or a
hang, and writes nothing outside the project and the state dir.

KASCADE_FUZZ_EXAMPLES scales the number of cases (default sized to stay under two
minutes in CI); the seed is printed by hypothesis on a failure, which it then replays.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, Phase, settings

SCALE = float(os.environ.get("KASCADE_FUZZ_EXAMPLES", "1"))

settings.register_profile(
    "fuzz",
    deadline=None,
    derandomize=os.environ.get("KASCADE_FUZZ_RANDOM") is None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
    # Shrinking a failure on inputs this size can take minutes; CI reports the example
    # as found (KASCADE_FUZZ_SHRINK=1 shrinks it, for a closer look).
    phases=[Phase.explicit, Phase.reuse, Phase.generate]
    + ([Phase.shrink] if os.environ.get("KASCADE_FUZZ_SHRINK") else []),
)
settings.load_profile("fuzz")
