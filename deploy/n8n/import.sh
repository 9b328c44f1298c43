#!/bin/sh
# Imports the workflows beside this script into n8n's database and activates them. The Kubernetes
# Job and the Compose service n8n-import run it in the n8n image; tests/deploy/test_n8n_import.py
# runs it against a scratch n8n. Restart n8n afterwards: it registers active webhooks when it starts.
#
# Nodes may not read the environment (N8N_BLOCK_ENV_ACCESS_IN_NODE=true), so what the workflows need
# from it is written into them here: every $(NAME) in workflows.json becomes the variable NAME.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
filled="$(mktemp)"
trap 'rm -f "$filled"' EXIT

ids="$(node - "$here/workflows.json" "$filled" <<'JS'
const fs = require("node:fs");
const [source, target] = process.argv.slice(-2);
// The token is the webhooks' only credential and part of their URL: long, and nothing to escape.
const rules = { N8N_WEBHOOK_PATH_TOKEN: /^[A-Za-z0-9_-]{32,}$/ };
const plain = /^[^\s"\\]+$/; // safe inside a JSON string as it is
const bad = new Set();
// Upper-case names only: n8n's own $('Node name') references stay as they are.
const text = fs.readFileSync(source, "utf8").replace(/\$\(([A-Z][A-Z0-9_]*)\)/g, (_, name) => {
  const value = process.env[name] ?? "";
  if (!(rules[name] ?? plain).test(value)) bad.add(name);
  return value;
});
if (bad.size) {
  console.error(`import.sh: ${[...bad].join(", ")} unset or not usable (no spaces, quotes or backslashes;` +
    " the token: 32 or more of A-Z a-z 0-9 - _, e.g. openssl rand -hex 32)");
  process.exit(1);
}
fs.writeFileSync(target, text);
console.log(JSON.parse(text).map((workflow) => workflow.id).join(" "));
JS
)"

n8n import:workflow --input="$filled"
# The import leaves every workflow inactive; activate ours only, not whatever else n8n holds.
for id in $ids; do
  n8n update:workflow --id="$id" --active=true
done
