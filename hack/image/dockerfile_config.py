"""Print the image config (User, Env, Entrypoint, Cmd, WorkingDir, Labels) that
runtime-image/Dockerfile gives its final stage, as the JSON hack/image/main.go takes, so
the image built here without Docker carries the same contract as the one users build.

Usage: python hack/image/dockerfile_config.py runtime-image/Dockerfile > config.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from dockerfile_parse import DockerfileParser

# What a Docker build starts PATH from when the base image sets none of its own
# (Docker's default; the python base image keeps it with /usr/local/bin first).
BASE_PATH = "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"


def image_config(dockerfile: Path) -> dict[str, Any]:
    parser = DockerfileParser(
        path=str(dockerfile), env_replace=True, parent_env={"PATH": BASE_PATH}
    )
    final: dict[str, Any] = {"Env": {"PATH": BASE_PATH}, "Labels": {}}
    for instruction in parser.structure:
        kind, value = instruction["instruction"], instruction["value"]
        if kind == "FROM":  # a new stage starts from scratch
            final = {"Env": {"PATH": BASE_PATH}, "Labels": {}}
        elif kind in ("ENTRYPOINT", "CMD"):
            final[kind.title()] = json.loads(value)
        elif kind == "USER":
            final["User"] = value
        elif kind == "WORKDIR":
            final["WorkingDir"] = value
    # dockerfile-parse resolves ENV and LABEL (with ARG defaults and $VAR) of the last stage
    final["Env"].update(parser.envs)
    final["Labels"].update(parser.labels)
    final["Env"] = [f"{name}={value}" for name, value in final["Env"].items()]
    return {
        key: final[key]
        for key in ("User", "Env", "Entrypoint", "Cmd", "WorkingDir", "Labels")
        if key in final
    }


if __name__ == "__main__":
    json.dump(image_config(Path(sys.argv[1])), sys.stdout, indent=2)
    sys.stdout.write("\n")
