"""hello-team: drops records of skipped namespaces and tags the rest with their team."""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import container, types


def parse_config(text: str) -> tuple[list[str], str]:
    """The sidecar's [config]: skip_namespaces (list of strings), default_team (string)."""
    config = json.loads(text)
    if not isinstance(config, dict):
        raise Err("config: expected a table with skip_namespaces and default_team")
    unknown = sorted(set(config) - {"skip_namespaces", "default_team"})
    if unknown:
        raise Err(f"config: unknown key {unknown[0]!r}; expected skip_namespaces, default_team")
    skip = config.get("skip_namespaces")
    if not isinstance(skip, list) or not all(isinstance(n, str) for n in skip):
        raise Err("config: skip_namespaces must be a list of strings")
    default_team = config.get("default_team")
    if not isinstance(default_team, str):
        raise Err("config: default_team must be a string")
    return skip, default_team


class Handler(exports.Handler):
    """The plugin: componentize-py exports this class's methods as the handler interface."""

    def init(self, config: str) -> None:
        """Called once per instance with the sidecar's [config] as JSON."""
        global SKIP_NAMESPACES, DEFAULT_TEAM
        SKIP_NAMESPACES, DEFAULT_TEAM = parse_config(config)

    def process(self, event: types.Lifecycle, record: container.Container) -> types.Verdict:
        """Drops records of skipped namespaces; tags the others with team."""
        if record.namespace() in SKIP_NAMESPACES:
            return types.Verdict_Drop()
        team = record.pod_label("team")
        record.set_tag("team", team if team is not None else DEFAULT_TEAM)
        return types.Verdict_Pass()


SKIP_NAMESPACES: list[str] = []
DEFAULT_TEAM = ""
