"""Group-commerce service: the functions functions-framework serves.

`functions-framework --source functions/group_commerce/main.py --target serve --port 3003`
"""

from functions.group_commerce.api import (
    close_campaign,
    create_campaign,
    get_campaign,
    join_campaign,
    list_campaigns,
)
from functions.group_commerce.handlers import (
    close_expired_campaigns,
    follow_seat_payment,
    open_campaign,
    project_product,
)
from fusion.declare import boot, service_dispatcher
from fusion.registry import Service, declare_service

SERVICE = declare_service(Service(
    name="group-commerce", port=3003, cpu_limit="500m", memory_limit="512Mi",
    min_replicas=1, max_replicas=5, cpu_target=70,
))
boot(SERVICE.name)
serve = service_dispatcher(SERVICE.name)

__all__ = [
    "SERVICE",
    "close_campaign",
    "close_expired_campaigns",
    "create_campaign",
    "follow_seat_payment",
    "get_campaign",
    "join_campaign",
    "list_campaigns",
    "open_campaign",
    "project_product",
    "serve",
]
