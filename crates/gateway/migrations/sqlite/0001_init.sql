-- clave-gateway schema (SQLite). Holds routing metadata, manifests and ciphertext only.
CREATE TABLE projects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created BIGINT NOT NULL
);

CREATE TABLE functions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    active_version BIGINT,
    latest_version BIGINT NOT NULL DEFAULT 0,
    created BIGINT NOT NULL,
    UNIQUE (project_id, name)
);

CREATE TABLE versions (
    function_id BIGINT NOT NULL REFERENCES functions (id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    manifest BLOB NOT NULL,
    sealed_code BLOB NOT NULL,
    code_hash TEXT NOT NULL,
    limits TEXT NOT NULL,
    manifest_bytes BIGINT NOT NULL,
    sealed_code_bytes BIGINT NOT NULL,
    created BIGINT NOT NULL,
    PRIMARY KEY (function_id, version)
);

CREATE TABLE deploy_tokens (
    token_hash TEXT PRIMARY KEY,
    project_id BIGINT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    created BIGINT NOT NULL
);

CREATE TABLE usage_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    function TEXT NOT NULL,
    version BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    duration_ms BIGINT NOT NULL,
    request_bytes BIGINT NOT NULL,
    response_bytes BIGINT NOT NULL,
    created BIGINT NOT NULL
);

CREATE INDEX usage_records_by_function ON usage_records (project, function, created);
