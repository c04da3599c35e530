"""probe: a Python plugin for the agent's failure tests, one behaviour per config.

Records of namespaces other than the config's `namespace` pass untouched (the tests share
one containerd). On the others every mode first sets the tag py_probe to the config's
`tag`, then:
- "tag": passes the record;
- "raise": raises Err (process returns err), so the tag must be rolled back;
- "spin": loops forever, so the call deadline must stop it;
- "hog": allocates without bound, so the memory limit must stop it.
"""

import json

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import container, host, types

MODES = ("tag", "raise", "spin", "hog")
MODE = "tag"
TAG = ""
NAMESPACE = ""


class Handler(exports.Handler):
    def init(self, config: str) -> None:
        global MODE, TAG, NAMESPACE
        parsed = json.loads(config)
        if not isinstance(parsed, dict) or set(parsed) - {"mode", "tag", "namespace"}:
            raise Err("config: expected only the keys mode, tag and namespace")
        MODE = parsed.get("mode", "tag")
        TAG = parsed.get("tag", "python")
        NAMESPACE = parsed.get("namespace", "")
        if MODE not in MODES or not isinstance(TAG, str) or not isinstance(NAMESPACE, str):
            raise Err(f"config: mode must be one of {', '.join(MODES)}; tag and namespace strings")
        host.log(types.Level.INFO, f"probe ready in mode {MODE}")

    def process(self, event: types.Lifecycle, record: container.Container) -> types.Verdict:
        if record.namespace() != NAMESPACE:
            return types.Verdict_Pass()
        record.set_tag("py_probe", TAG)
        if MODE == "raise":
            raise Err("probe raised on purpose")
        if MODE == "spin":
            n = 0
            while True:
                n += 1
        if MODE == "hog":
            hoard = []
            while True:
                hoard.append(bytearray(1 << 20))
        return types.Verdict_Pass()
