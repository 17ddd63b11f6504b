"""pgkura: PostgreSQL 18 + pgvector + pg_bigm in Docker, with migrations, backups and checks."""

__version__ = "0.1.0"
