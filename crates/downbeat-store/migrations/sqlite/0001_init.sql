-- Downbeat schema v1 (SQLite). Never edit a shipped migration: add a new one.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    label      TEXT NOT NULL,
    actor      TEXT NOT NULL,
    started_at INTEGER NOT NULL,
    ended_at   INTEGER
) STRICT;

CREATE TABLE tasks (
    seq         INTEGER PRIMARY KEY,          -- dense, never reused; the short id derives from it
    id          TEXT NOT NULL UNIQUE,         -- short human id
    key         TEXT UNIQUE,                  -- optional plan key
    parent_seq  INTEGER,
    title       TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    role        TEXT,
    status      TEXT NOT NULL,
    priority    INTEGER NOT NULL DEFAULT 1,
    effort      INTEGER NOT NULL DEFAULT 1,
    acceptance  TEXT NOT NULL DEFAULT '[]',   -- JSON array of strings
    tags        TEXT NOT NULL DEFAULT '[]',
    footprint   TEXT NOT NULL DEFAULT '[]',
    result      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    started_at  INTEGER,
    finished_at INTEGER,
    archived    INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX tasks_parent ON tasks(parent_seq);
CREATE INDEX tasks_status ON tasks(status) WHERE archived = 0;

CREATE TABLE edges (
    from_seq   INTEGER NOT NULL,
    to_seq     INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (from_seq, to_seq, kind)
) STRICT, WITHOUT ROWID;
CREATE INDEX edges_to ON edges(to_seq);

CREATE TABLE objectives (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    title      TEXT NOT NULL,
    status     TEXT NOT NULL,
    session_id INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE objective_tasks (
    objective_id INTEGER NOT NULL,
    task_seq     INTEGER NOT NULL,
    PRIMARY KEY (objective_id, task_seq)
) STRICT, WITHOUT ROWID;

CREATE TABLE insights (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    text       TEXT NOT NULL,
    task_seq   INTEGER,
    session_id INTEGER,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE decisions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    text          TEXT NOT NULL,
    why           TEXT NOT NULL,
    task_seq      INTEGER,
    supersedes    INTEGER,
    superseded_by INTEGER,
    session_id    INTEGER,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE artifacts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    task_seq   INTEGER NOT NULL,
    path       TEXT NOT NULL,
    size       INTEGER,
    sha256     TEXT,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX artifacts_task ON artifacts(task_seq);

CREATE TABLE events (
    seq        INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    session_id INTEGER,
    action     TEXT NOT NULL,
    entity     TEXT NOT NULL,
    before     TEXT,
    after      TEXT
) STRICT;
CREATE INDEX events_at ON events(at);
CREATE INDEX events_entity ON events(entity);

INSERT INTO meta(key, value) VALUES ('next_task_seq', '1');
