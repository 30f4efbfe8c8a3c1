-- The PostgreSQL schema's version 6 adds a server-side function for batches of state changes.
-- SQLite runs in the process and needs nothing here; this version keeps the two schemas'
-- versions in step, so a project can move between them (`downbeat db migrate`).
SELECT 1;
