"""Operations service: the functions functions-framework serves (`--source functions/operations/main.py`)."""

from functions.operations.api import get_status, list_dead_letters, replay_dead_letters
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="operations", port=3007, cpu_limit="250m", memory_limit="256Mi", min_replicas=1, max_replicas=2,
    cpu_target=70,
))
boot(SERVICE.name)
serve = service_dispatcher(SERVICE.name)

__all__ = ["SERVICE", "get_status", "list_dead_letters", "replay_dead_letters", "serve"]
