"""The tunesmith catalogue: SQLAlchemy models, sessions, migrations and the on-disk layout."""
