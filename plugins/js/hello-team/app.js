// hello-team: drops records of skipped namespaces and tags the rest with their team.

let skipNamespaces = [];
let defaultTeam = "";

// The sidecar's [config]: skip_namespaces (list of strings), default_team (string).
function parseConfig(text) {
  const config = JSON.parse(text);
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw "config: expected a table with skip_namespaces and default_team";
  }
  const unknown = Object.keys(config)
    .filter((key) => key !== "skip_namespaces" && key !== "default_team")
    .sort();
  if (unknown.length > 0) {
    throw `config: unknown key '${unknown[0]}'; expected skip_namespaces, default_team`;
  }
  const skip = config.skip_namespaces;
  if (!Array.isArray(skip) || !skip.every((n) => typeof n === "string")) {
    throw "config: skip_namespaces must be a list of strings";
  }
  if (typeof config.default_team !== "string") {
    throw "config: default_team must be a string";
  }
  return [skip, config.default_team];
}

// The plugin: componentize-js exports this object as the handler interface.
export const handler = {
  // Called once per instance with the sidecar's [config] as JSON.
  init(config) {
    [skipNamespaces, defaultTeam] = parseConfig(config);
  },

  // Drops records of skipped namespaces; tags the others with team.
  process(_event, record) {
    if (skipNamespaces.includes(record.namespace())) {
      return { tag: "drop" };
    }
    record.setTag("team", record.podLabel("team") ?? defaultTeam);
    return { tag: "pass" };
  },
};
