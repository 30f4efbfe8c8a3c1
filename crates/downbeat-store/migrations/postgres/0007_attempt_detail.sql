-- What an attempt did beyond its outcome, as one JSON object (`AttemptDetail`): the agent CLI
-- that ran it, its session id (a retry on any machine resumes it), its cost, and the git work
-- of an attempt run in a worktree (branch, base and head commits, merge, diff size).
ALTER TABLE attempts ADD COLUMN detail TEXT;
