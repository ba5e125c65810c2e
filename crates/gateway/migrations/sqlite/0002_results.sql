-- Results of asynchronous invocations: the sealed response (opaque) or the problem the call ended with.
-- A row is created 'pending' when the call is accepted and completed at most once.
CREATE TABLE results (
    id TEXT PRIMARY KEY,
    project TEXT NOT NULL,
    function TEXT NOT NULL,
    version BIGINT NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER,
    problem TEXT,
    response BLOB,
    created BIGINT NOT NULL,
    completed BIGINT
);

CREATE INDEX results_by_created ON results (created);
