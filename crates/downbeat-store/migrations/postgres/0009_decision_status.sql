-- Decisions can be proposed and later accepted or rejected. Decisions recorded before this
-- version were in force from the start: they are `accepted`. `decided_at` and `decided_why`
-- say when a proposal was accepted or rejected, and why. The `decision.proposed`,
-- `decision.accepted` and `decision.rejected` events record every change, in the same
-- transaction.
ALTER TABLE decisions ADD COLUMN status TEXT NOT NULL DEFAULT 'accepted';
ALTER TABLE decisions ADD COLUMN decided_at BIGINT;
ALTER TABLE decisions ADD COLUMN decided_why TEXT NOT NULL DEFAULT '';
