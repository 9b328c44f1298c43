"""How the platform delivers each kind of event to this service's handlers (retries before dead letters).

The Kafka broker waits delay * 2^n before retry n when exponential and delay * n when linear.
"""

from fusion.registry import Delivery

PRODUCT_EVENTS = Delivery(retries=3, backoff="exponential", delay=1.0, ordered=True)
# inventory.reserved / inventory.insufficient: retries after 1 s, 2 s, 3 s.
RESERVATION_EVENTS = Delivery(retries=3, backoff="linear", delay=1.0, ordered=True)
# payment.*: retries after 2 s, 4 s, 8 s, 16 s, 32 s.
PAYMENT_EVENTS = Delivery(retries=5, backoff="exponential", delay=1.0, ordered=True)
# shipping.*: retries after 5 s, 10 s, 20 s.
SHIPPING_EVENTS = Delivery(retries=3, backoff="exponential", delay=2.5, ordered=True)
