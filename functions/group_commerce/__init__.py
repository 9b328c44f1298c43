"""Group buying: a product offered at a discount when enough buyers join before a deadline.

Lifecycle of a campaign:
- "pending": created by `POST /campaigns` (staff) from the local product projection (or, for a
  product it has not heard of yet, the catalog itself), with the group price fixed at creation:
  (100 - discountPercentage)% of the catalog price, in the currency's minor units, rounded half up.
  Inventory is asked to hold the stock of every seat (maxParticipants units).
- "active" once that stock is held; "refused" (with the reason) when it cannot be.
- "successful": the authorized seat that brings actualParticipants to minParticipants tips it,
  once (group-commerce.campaign.successful with every participant). Joins stay open until
  maxParticipants seats are taken or the deadline passes.
- "expired": the deadline passed below the minimum (group-commerce.campaign.expired with the
  participants, so they can be told); every authorization is cancelled, nobody is charged, and the
  stock goes back.
- "closed": the deadline passed at or above the minimum (group-commerce.campaign.closed); the
  stock of the seats nobody took goes back.

Money (see `flow`): joining holds a seat and payments asks the customer's card for an authorization
of the group price (a PaymentIntent with manual capture). The seat counts once authorized. When the
group forms every counted seat is captured, and each captured seat becomes an order at the group
price that is already paid and runs on to shipping. A charge that fails frees only that seat; a
group order that fails after the charge is refunded (the campaign counts its refunded seats).
"""
