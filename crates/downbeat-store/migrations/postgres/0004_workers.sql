-- Worker processes that claim tasks from this database (live state, not history: the event
-- log keeps their registrations and departures). Heartbeats use the database's clock.

CREATE TABLE workers (
    name         TEXT PRIMARY KEY,            -- also the lease holder of the tasks it claims
    host         TEXT NOT NULL,
    pid          BIGINT NOT NULL,
    roles        TEXT NOT NULL DEFAULT '[]',  -- JSON array; empty = any role
    executors    TEXT NOT NULL DEFAULT '[]',
    labels       TEXT NOT NULL DEFAULT '[]',
    slots        BIGINT NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    ttl_ms       BIGINT NOT NULL              -- alive while heartbeat_at + ttl_ms is in the future
);
