-- The language of each document, for choosing an embedding model per language.
ALTER TABLE documents ADD COLUMN IF NOT EXISTS language text NOT NULL DEFAULT 'ja';
