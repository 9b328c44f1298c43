"""The Knative and Kubernetes manifests, generated from the function registry, and their checks."""
