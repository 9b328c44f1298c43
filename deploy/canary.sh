#!/usr/bin/env bash
# A canary release of every function with Knative traffic splitting (kn), in four steps:
#   deploy/canary.sh pin NS STATE        before the deploy: each existing function's serving revision tagged
#                                        `stable` and given 100 % (new Revisions then start at 0 %)
#   deploy/canary.sh split NS STATE PCT  after it: each function with a new Revision sends PCT % to it (`canary`)
#   deploy/canary.sh rollback NS STATE   the gate failed: every function back to 100 % on its stable revision
#   deploy/canary.sh promote NS STATE    the gate passed: 100 % on the latest Revision, the tags removed
# STATE is a folder the steps share: stable.txt ("function revision" lines) and canary.txt (function names).
set -euo pipefail
step="$1"
ns="$2"
state="$3"
mkdir -p "$state"

functions() {
  kubectl -n "$ns" get ksvc -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}'
}

serving() {
  kubectl -n "$ns" get ksvc "$1" -o jsonpath='{.status.latestReadyRevisionName}'
}

case "$step" in
  pin)
    : > "$state/stable.txt"
    for function in $(functions); do
      revision="$(serving "$function")"
      kn service update "$function" -n "$ns" --tag "$revision=stable" --traffic stable=100
      echo "$function $revision" >> "$state/stable.txt"
    done
    ;;
  split)
    percent="$4"
    : > "$state/canary.txt"
    while read -r function revision; do
      if [[ "$(serving "$function")" != "$revision" ]]; then
        kn service update "$function" -n "$ns" --tag @latest=canary \
          --traffic "stable=$((100 - percent)),@latest=$percent"
        echo "$function" >> "$state/canary.txt"
      fi
    done < "$state/stable.txt"
    echo "canary: $(wc -l < "$state/canary.txt") functions send ${percent} % to their new Revision"
    ;;
  rollback)
    while read -r function revision; do
      kn service update "$function" -n "$ns" --traffic "$revision=100"
    done < "$state/stable.txt"
    echo "rolled back: every function serves its stable revision again" >&2
    ;;
  promote)
    while read -r function _; do
      untag="stable"
      if grep -qx "$function" "$state/canary.txt"; then untag="stable,canary"; fi
      kn service update "$function" -n "$ns" --traffic @latest=100 --untag "$untag"
    done < "$state/stable.txt"
    ;;
  *)
    echo "usage: deploy/canary.sh pin|split|rollback|promote NAMESPACE STATE_DIR [PERCENT]" >&2
    exit 2
    ;;
esac
