-- pgkura:no-transaction
-- HNSW index for cosine-distance search. Built CONCURRENTLY so writes go on meanwhile,
-- which PostgreSQL allows only outside a transaction (hence the directive above).
CREATE INDEX CONCURRENTLY IF NOT EXISTS documents_embedding_hnsw
    ON documents USING hnsw (embedding vector_cosine_ops);
