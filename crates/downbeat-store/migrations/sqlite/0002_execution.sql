-- Execution: per-task executor settings, leases with fencing epochs, retry state, the attempt ledger.

ALTER TABLE tasks ADD COLUMN executor TEXT;              -- JSON executor spec or a named executor; NULL = role/default
ALTER TABLE tasks ADD COLUMN timeout_ms INTEGER;         -- NULL = role/default
ALTER TABLE tasks ADD COLUMN max_attempts INTEGER;       -- NULL = role/default
ALTER TABLE tasks ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;  -- attempts started so far
ALTER TABLE tasks ADD COLUMN not_before INTEGER;         -- a retry waits until then
ALTER TABLE tasks ADD COLUMN lease_holder TEXT;
ALTER TABLE tasks ADD COLUMN lease_expires INTEGER;
ALTER TABLE tasks ADD COLUMN lease_epoch INTEGER NOT NULL DEFAULT 0;  -- fencing token, +1 per claim

CREATE INDEX tasks_lease ON tasks(lease_expires) WHERE status = 'running';

CREATE TABLE attempts (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    task_seq          INTEGER NOT NULL,
    number            INTEGER NOT NULL,      -- 1 for the first attempt of the task
    epoch             INTEGER NOT NULL,      -- the lease epoch this attempt ran under
    worker            TEXT NOT NULL,
    executor          TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    outcome           TEXT,                  -- succeeded, failed, timed-out, cancelled, error, lost
    exit_code         INTEGER,
    error             TEXT,
    summary           TEXT,
    tokens_prompt     INTEGER,
    tokens_completion INTEGER
) STRICT;
CREATE INDEX attempts_task ON attempts(task_seq);

ALTER TABLE artifacts ADD COLUMN attempt_id INTEGER;
