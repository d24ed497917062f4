"""`birdcall config write-default COMPONENT OUT.yaml`: a commented starting point for ``--config``."""

from __future__ import annotations

from pathlib import Path

import typer

from ._common import out, user_errors

config_app = typer.Typer(help="Default configuration files.", no_args_is_help=True)
COMPONENTS = ("train", "features")


def register(app: typer.Typer) -> None:
    app.add_typer(config_app, name="config")


@config_app.command("write-default")
def write_default(
    component: str = typer.Argument(..., help=f"One of: {', '.join(COMPONENTS)}."),
    path: Path = typer.Argument(..., help="YAML file to write."),
) -> None:
    """Write the default config of COMPONENT as YAML (edit it, then pass it with --config)."""
    from ..config import to_yaml
    from ..errors import ParameterError
    from ..features import FeatureConfig
    from ..train import TrainConfig

    with user_errors():
        defaults = {"train": TrainConfig, "features": FeatureConfig}
        if component not in defaults:
            raise ParameterError(f"unknown component {component!r}; choose one of {', '.join(COMPONENTS)}")
        to_yaml(defaults[component](), path)
    out.print(f"wrote default {component} config to {path}")
