-- Flags agents raise, with where each stands: `raised` (waiting for its follow-up, or for
-- someone: no rule), `handled` (its follow-up completed, or its rules did all they do at
-- once) or `suppressed` (the loop guard kept its rules from spawning a follow-up). The
-- `flag.raised` and `flag.handled` events record every change, in the same transaction.
CREATE TABLE flags (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_seq      INTEGER NOT NULL,
    flag          TEXT NOT NULL,
    detail        TEXT NOT NULL DEFAULT '',
    state         TEXT NOT NULL,
    note          TEXT NOT NULL DEFAULT '',
    follow_up_seq INTEGER,
    raised_at     INTEGER NOT NULL,
    handled_at    INTEGER
) STRICT;

CREATE INDEX flags_task ON flags(task_seq);
CREATE INDEX flags_follow_up ON flags(follow_up_seq) WHERE follow_up_seq IS NOT NULL;
