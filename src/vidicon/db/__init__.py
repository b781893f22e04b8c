"""Data access: the schema, migrations and queries, for SQLite and PostgreSQL alike."""
