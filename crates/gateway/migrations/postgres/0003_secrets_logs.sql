-- Sealed secrets: ciphertext sealed by the developer's client to the attested code key (the
-- gateway cannot open it). function = '' for a project-wide secret. A deleted secret keeps its
-- row with sealed = NULL so that its version number never goes back (the version is bound into
-- the ciphertext: an old value cannot be served again under a new number).
CREATE TABLE secrets (
    project TEXT NOT NULL,
    function TEXT NOT NULL,
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    sealed BYTEA,
    updated BIGINT NOT NULL,
    PRIMARY KEY (project, function, name)
);

-- The developer log public key of a project (X25519, hex).
CREATE TABLE log_keys (
    project TEXT PRIMARY KEY,
    public_key TEXT NOT NULL,
    updated BIGINT NOT NULL
);

-- Developer log records, sealed inside the engine to the project's log key (opaque here).
CREATE TABLE logs (
    id BIGSERIAL PRIMARY KEY,
    project TEXT NOT NULL,
    function TEXT NOT NULL,
    sealed BYTEA NOT NULL,
    created BIGINT NOT NULL
);

CREATE INDEX logs_by_project ON logs (project, id);
CREATE INDEX logs_by_created ON logs (created);
