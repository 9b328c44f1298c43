"""FusionCommerce's shared library: configuration, database, event contracts, the
CloudEvents/Kafka binding, outbox and inbox, HTTP helpers, the function registry,
the local platform and the `fusion` CLI."""
