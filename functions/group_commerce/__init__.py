"""Group buying: a product offered at a discount when enough buyers join before a deadline.

Lifecycle of a campaign:
- "active": created by `POST /campaigns` from the local product projection (fed by product.created),
  with the group price fixed at creation: (100 - discountPercentage)% of the catalog price, in the
  currency's minor units, rounded half up.
- "successful": the join that brings actualParticipants to minParticipants tips it, once
  (group-commerce.campaign.successful with every participant). Joins stay open until
  maxParticipants seats are taken or the deadline passes.
- "expired": the deadline passed below the minimum (group-commerce.campaign.expired with the
  participants, so they can be told); nobody is charged.
- "closed": the deadline passed at or above the minimum (group-commerce.campaign.closed).

Refused joins answer 409, as state conflicts: "campaign_full" or "campaign_closed" (see `flow.join_campaign`).

Orders and payment: the orders service turns every seat of a successful campaign into one order at
the group price (the participants when it tips, then each later joiner at once), carrying the
campaign id. A group order then runs the normal saga: stock is reserved, the order is confirmed,
and the payments service creates a Stripe PaymentIntent for it. The storefront collects the
participant's payment exactly as for any order: it calls `POST /payments` for the order to get the
PaymentIntent's client secret and confirms the payment with Stripe in the browser; the signed
webhook then moves the order to paid. Nobody is charged while a campaign is still below its
minimum, and an expired campaign creates no orders.
"""
