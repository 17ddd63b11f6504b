-- First-start bootstrap. The image's entrypoint runs this once, with psql, when the data
-- volume is empty; `invoke db.reset` runs it again on a fresh volume. Everything after the
-- first start belongs in db/migrations (applied with `invoke db.migrate`).

-- pgvector: vector columns and HNSW / IVFFlat indexes for embeddings.
CREATE EXTENSION IF NOT EXISTS vector;

-- pg_bigm: bigram indexes for LIKE '%...%' search in Japanese (and any other) text.
-- The image loads it through shared_preload_libraries so its settings are registered.
CREATE EXTENSION IF NOT EXISTS pg_bigm;
