-- n8n keeps its workflows and executions in PostgreSQL, in a database of its own.
CREATE DATABASE n8n;
