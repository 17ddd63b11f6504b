-- Documents with a Japanese body and an embedding (384 dimensions, e.g. multilingual-e5-small).
CREATE TABLE IF NOT EXISTS documents (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title      text NOT NULL,
    body       text NOT NULL,
    embedding  vector(384),
    created_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE documents IS '文書: 本文はpg_bigmで全文検索、埋め込みはpgvectorで近傍検索';
