"""What the three timeline apps share so that only their design differs: settings, the
database, the HTTP contract (models, errors, body limit, the user routes) and, for the two
fanout designs, the Redis timeline cache and the outbox worker that feeds it."""
