#!/usr/bin/env bash
# Deploy one rendered environment (a folder with platform/, jobs/, apps/) into its namespace, in order:
# platform -> create-topics Job -> migrate Job -> n8n workflows Job -> apps, then wait until every
# Knative Service is Ready. The Secrets must exist already (docs/operations.md, "Secrets").
#   deploy/kube-deploy.sh knative/overlays/staging fusioncommerce-staging
set -euo pipefail
dir="$1"
ns="$2"
job_timeout="${JOB_TIMEOUT_SECONDS:-900}"

job_condition() {
  kubectl -n "$ns" get job "$1" -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}"
}

run_job() {
  local name="$1" deadline=$((SECONDS + job_timeout))
  # A Job's pod template is immutable: replace the previous run instead of patching it.
  kubectl -n "$ns" delete job "$name" --ignore-not-found --wait=true
  kubectl apply -f "$dir/jobs/$name.yaml"
  while (( SECONDS < deadline )); do
    if [[ "$(job_condition "$name" Complete)" == "True" ]]; then
      kubectl -n "$ns" logs "job/$name" --tail=50 || true
      return 0
    fi
    if [[ "$(job_condition "$name" Failed)" == "True" ]]; then
      kubectl -n "$ns" logs "job/$name" --tail=200 >&2 || true
      echo "job $name failed" >&2
      return 1
    fi
    sleep 5
  done
  echo "job $name did not finish within ${job_timeout}s" >&2
  return 1
}

# The n8n Triggers name the webhook path token from the n8n Secret; it is filled in here, never committed.
n8n_token="$(kubectl -n "$ns" get secret n8n-credentials -o jsonpath='{.data.N8N_WEBHOOK_PATH_TOKEN}' | base64 -d)"
if [[ ${#n8n_token} -lt 32 ]]; then
  echo "the n8n-credentials Secret needs N8N_WEBHOOK_PATH_TOKEN (32+ characters, e.g. openssl rand -hex 32)" >&2
  exit 1
fi
for file in "$dir"/platform/*.yaml; do
  sed 's/\$(N8N_WEBHOOK_PATH_TOKEN)/'"$n8n_token"'/g' "$file"
  echo "---"
done | kubectl apply -f -
run_job create-topics
run_job migrate
run_job n8n-import-workflows
kubectl -n "$ns" rollout restart deployment/n8n
kubectl apply -f "$dir/apps/"
kubectl -n "$ns" rollout status deployment/outbox-relay --timeout=300s
kubectl -n "$ns" wait --for=condition=Ready ksvc --all --timeout=600s
kubectl -n "$ns" wait --for=condition=Ready trigger --all --timeout=300s
