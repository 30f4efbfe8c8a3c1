-- Events name their task by sequence number as well as by id. Task ids look random, so an
-- index on the id text puts every new entry at a random place: each commit of a batch of
-- task changes wrote one more index page per event. Sequence numbers follow creation order.
-- Only task histories are looked up by entity, so the text index goes.

ALTER TABLE events ADD COLUMN task_seq INTEGER;

-- Decision and session record ids (`d12345`) can look like task ids.
UPDATE events SET task_seq = t.seq FROM tasks AS t
WHERE events.entity = t.id
  AND events.action NOT LIKE 'decision.%' AND events.action NOT LIKE 'session.%';

CREATE INDEX events_task ON events(task_seq) WHERE task_seq IS NOT NULL;
DROP INDEX events_entity;
