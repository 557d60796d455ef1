"""Pure rules about spending Stripe's request budget (no Flask, database, Redis or Stripe here)."""


def next_update_slot(now, free_at, interval):
    """The slot a PaymentIntent update may start at, and when the next slot is free.

    Slots are `interval` seconds apart on one timeline: an idle store starts at once, a busy one
    queues first-come first-served, so the store never spends more than 1/interval updates a second.
    """
    slot = max(now, free_at)
    return slot, slot + interval
