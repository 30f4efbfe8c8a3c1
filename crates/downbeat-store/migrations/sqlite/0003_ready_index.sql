-- Pending tasks in priority order, so a runner finds the first ready ones without sorting
-- the whole table. Replaces the status-only index (the new one serves status lookups too).

DROP INDEX tasks_status;
CREATE INDEX tasks_ready ON tasks(status, priority DESC, seq) WHERE archived = 0;
