-- Only tasks with a parent are found by it (`parent_seq = ?`, which implies it is not NULL,
-- so the partial index serves those lookups). Most tasks have none: a plan of a million
-- top-level tasks no longer writes a million index entries that nothing reads.
DROP INDEX tasks_parent;
CREATE INDEX tasks_parent ON tasks(parent_seq) WHERE parent_seq IS NOT NULL;
