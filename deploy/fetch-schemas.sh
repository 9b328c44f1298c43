#!/usr/bin/env bash
# Download the validation schemas listed in deploy/schemas.txt into a folder (default: ../shared/schemas,
# where the test suite looks for them) and refuse any file whose git blob id differs from the list.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$root/../shared/schemas}"
grep -v '^#' "$root/deploy/schemas.txt" | while read -r file blob url; do
  [[ -z "$file" ]] && continue
  mkdir -p "$(dirname "$dest/$file")"
  curl --fail --silent --show-error --location --retry 3 --output "$dest/$file" "$url"
  actual="$(git hash-object "$dest/$file")"
  if [[ "$actual" != "$blob" ]]; then
    echo "$file: blob $actual, expected $blob" >&2
    exit 1
  fi
  echo "$file ok"
done
