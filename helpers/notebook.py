"""What every notebook does first, and the tables it shows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from helpers import rehearsal
from helpers.models import checkpoints
from helpers.models.architecture import MEGATRON_NAMES
from helpers.profiles import Profile, get_profile
from helpers.routes import DEFAULT_ROUTE, Route, get_route, require_route_installed
from helpers.workspace import Workspace, open_workspace

ARCHITECTURE_ROWS = {
    "num_layers": "layers",
    "hidden_size": "hidden size",
    "ffn_hidden_size": "MLP (ffn) size",
    "num_attention_heads": "attention heads",
    "num_query_groups": "query groups (KV heads)",
    "head_dim": "head dim",
    "vocab_size": "vocabulary (embedding rows)",
}


@dataclass(frozen=True)
class Session:
    profile: Profile
    ws: Workspace
    route: Route


def start(profile_name: str, workdir: str, route_name: str = DEFAULT_ROUTE) -> Session:
    """Resolve the profile, the route and the work directory (environment variables win) and say what they are."""
    rehearsal.start_process()
    profile, route = get_profile(profile_name), get_route(route_name)
    require_route_installed(route)
    ws = open_workspace(profile.name, profile.model.name, workdir, route.name)
    print(f"Profile {profile.name!r}: {profile.summary}")
    print(f"Route {route.name!r}: {route.title}; GPUs: {route.container}")
    print(f"Work directory: {ws.root}")
    return Session(profile, ws, route)


def architecture_table(*named: tuple[str, Path]) -> pd.DataFrame:
    """Architecture of each named NeMo checkpoint, measured on its weights."""
    columns = {name: checkpoints.architecture(path).as_dict() for name, path in named}
    return pd.DataFrame(columns).rename(index=ARCHITECTURE_ROWS)


def config_vs_weights(path: Path) -> pd.DataFrame:
    """The architecture the checkpoint's config declares beside the one its weights have."""
    config = checkpoints.model_config(path)
    declared = {field: config.get(name) for field, name in MEGATRON_NAMES.items()}
    measured = checkpoints.architecture(path).as_dict()
    table = pd.DataFrame({f"config ({checkpoints.config_file(path)})": declared, "weights": measured})
    return table.rename(index=ARCHITECTURE_ROWS)


def parameter_table(*named: tuple[str, Path]) -> pd.DataFrame:
    """Parameters by component, in millions, for each named NeMo checkpoint."""
    columns = {name: checkpoints.parameter_counts(path) for name, path in named}
    return (pd.DataFrame(columns) / 1e6).round(3).rename_axis("parameters (millions)")
