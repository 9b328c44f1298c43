"""Inventory service: stock per sku, reserved for orders without ever overselling."""
