"""Group-commerce service: the functions functions-framework serves.

`functions-framework --source functions/group_commerce/main.py --target serve --port 3003`
"""

from functions.group_commerce.campaigns import create_campaign, get_campaign, list_campaigns
from functions.group_commerce.expiry import close_expired_campaigns
from functions.group_commerce.joining import join_campaign
from functions.group_commerce.products import project_product
from fusion.declare import boot, service_dispatcher

boot("group-commerce")
serve = service_dispatcher("group-commerce")

__all__ = [
    "close_expired_campaigns",
    "create_campaign",
    "get_campaign",
    "join_campaign",
    "list_campaigns",
    "project_product",
    "serve",
]
