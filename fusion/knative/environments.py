"""The environments the manifests are rendered for, and what differs between them.

`base` holds the neutral defaults every environment starts from (a developer's own cluster:
`:latest` images, scale to zero everywhere, single-replica topics); `staging` and `production`
are the base plus their own namespace, image tag, log level, Redpanda address, replication and,
in production, the scaling floors of the original scaling table.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from fusion.topics import Topic

PROJECT_ROOT = Path(__file__).resolve().parents[2]
IMAGE_REGISTRY = "ghcr.io/fusioncommerce"
PLATFORM_IMAGE = "platform"  # the image of the migrations Job and the outbox relay
STAGING_TAG_PLACEHOLDER = "sha-COMMIT"  # CI renders the real `sha-<commit>`


def project_version() -> str:
    """The version in pyproject.toml: production images are tagged `v<version>`."""
    with (PROJECT_ROOT / "pyproject.toml").open("rb") as file:
        return str(tomllib.load(file)["project"]["version"])


@dataclass(frozen=True)
class Environment:
    name: str  # base | staging | production: the folder under knative/
    namespace: str
    fusion_env: str  # FUSION_ENV: development | staging | production
    image_tag: str
    log_level: str
    kafka_brokers: str
    replication: int  # replication factor of every topic Knative or the topics Job creates
    max_partitions: int  # cap on the catalogue's recommended partition counts
    scale_floors: bool  # min-scale from the scaling table instead of scale to zero
    public_base_url: str
    oidc_issuer: str  # the identity provider (e.g. a Keycloak realm); tokens are verified against its JWKS
    # The cluster's service-account issuer, which signs Knative Eventing's delivery tokens
    # (`kubectl get --raw /.well-known/openid-configuration` shows it).
    eventing_oidc_issuer: str = "https://kubernetes.default.svc.cluster.local"

    @property
    def kafka_tls(self) -> bool:
        """TLS and SASL/SCRAM to Kafka everywhere but a developer's own cluster."""
        return self.fusion_env != "development"

    def partitions(self, topic: Topic) -> int:
        return min(topic.partitions, self.max_partitions)

    @property
    def broker_partitions(self) -> int:
        """Partitions of the Broker's own topic, which carries every event type."""
        return self.max_partitions

    def image(self, name: str) -> str:
        return f"{IMAGE_REGISTRY}/{name}:{self.image_tag}"


def environments() -> dict[str, Environment]:
    base = Environment(
        name="base", namespace="fusioncommerce-dev", fusion_env="development", image_tag="latest",
        log_level="debug", kafka_brokers="redpanda:9092", replication=1, max_partitions=1, scale_floors=False,
        public_base_url="http://fusioncommerce-dev.example.com",
        oidc_issuer="https://id.fusioncommerce-dev.example.com/realms/fusioncommerce",
    )
    staging = Environment(
        name="staging", namespace="fusioncommerce-staging", fusion_env="staging",
        image_tag=STAGING_TAG_PLACEHOLDER, log_level="info", kafka_brokers="redpanda-staging:9092", replication=1,
        max_partitions=3, scale_floors=False, public_base_url="https://api.staging.fusioncommerce.example.com",
        oidc_issuer="https://id.staging.fusioncommerce.example.com/realms/fusioncommerce",
    )
    production = Environment(
        name="production", namespace="fusioncommerce-production", fusion_env="production",
        image_tag="v" + project_version(), log_level="warn", kafka_brokers="redpanda-prod:9092", replication=3,
        max_partitions=12, scale_floors=True, public_base_url="https://api.fusioncommerce.example.com",
        oidc_issuer="https://id.fusioncommerce.example.com/realms/fusioncommerce",
    )
    return {env.name: env for env in (base, staging, production)}
