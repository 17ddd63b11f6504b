--
-- PostgreSQL database dump
--

\restrict pgkura


SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET transaction_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Name: pg_bigm; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS pg_bigm WITH SCHEMA public;


--
-- Name: EXTENSION pg_bigm; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION pg_bigm IS 'text similarity measurement and index searching based on bigrams';


--
-- Name: vector; Type: EXTENSION; Schema: -; Owner: -
--

CREATE EXTENSION IF NOT EXISTS vector WITH SCHEMA public;


--
-- Name: EXTENSION vector; Type: COMMENT; Schema: -; Owner: -
--

COMMENT ON EXTENSION vector IS 'vector data type and ivfflat and hnsw access methods';


SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: documents; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.documents (
    id bigint NOT NULL,
    title text NOT NULL,
    body text NOT NULL,
    embedding public.vector(384),
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    language text DEFAULT 'ja'::text NOT NULL
);


--
-- Name: TABLE documents; Type: COMMENT; Schema: public; Owner: -
--

COMMENT ON TABLE public.documents IS '文書: 本文はpg_bigmで全文検索、埋め込みはpgvectorで近傍検索';


--
-- Name: documents_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

ALTER TABLE public.documents ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME public.documents_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);


--
-- Name: schema_migrations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.schema_migrations (
    version bigint NOT NULL,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamp with time zone DEFAULT now() NOT NULL,
    duration_ms bigint DEFAULT 0 NOT NULL,
    applied_by text DEFAULT CURRENT_USER NOT NULL,
    how text DEFAULT 'applied'::text NOT NULL,
    CONSTRAINT schema_migrations_how_check CHECK ((how = ANY (ARRAY['applied'::text, 'baseline'::text, 'repaired'::text]))),
    CONSTRAINT schema_migrations_version_check CHECK ((version > 0))
);


--
-- Name: documents documents_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.documents
    ADD CONSTRAINT documents_pkey PRIMARY KEY (id);


--
-- Name: schema_migrations schema_migrations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.schema_migrations
    ADD CONSTRAINT schema_migrations_pkey PRIMARY KEY (version);


--
-- Name: documents_body_bigm; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX documents_body_bigm ON public.documents USING gin (body public.gin_bigm_ops);


--
-- Name: documents_embedding_hnsw; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX documents_embedding_hnsw ON public.documents USING hnsw (embedding public.vector_cosine_ops);


--
-- PostgreSQL database dump complete
--

\unrestrict pgkura


--
-- pgkura: the migrations this schema reflects
--

INSERT INTO "public"."schema_migrations" (version, name, checksum) VALUES
    (1, 'create_documents', '0edc33290b914033bdcc1a7475200cd6b60f0b448d0fccdb4e3d91a9557965f1'),
    (2, 'documents_embedding_hnsw', '6bae57789e9167475e5d6daf9679dca6a2c1119abcbfd6016f3974ae3cd7cf8a'),
    (3, 'documents_body_bigm', 'ef8d2d968b69b07e48a00abc83b667e5595c00fb5f08f941777630c1142f365c'),
    (4, 'add_documents_language', 'bf7016ff7b0515e0020b3159046a16f365c9f711fc1a704a1d8b7e23afd0c48b');
