-- pgkura:no-transaction
-- pg_bigm GIN index: makes body LIKE '%検索語%' fast for Japanese text.
CREATE INDEX CONCURRENTLY IF NOT EXISTS documents_body_bigm
    ON documents USING gin (body gin_bigm_ops);
