-- The batch function the PostgreSQL backend calls (`commit_batch`). Migration 6 shipped its
-- first version; this file is the one in force: the store installs it with CREATE OR REPLACE
-- when it opens a database whose function differs from it (see `install_batch_function`).
-- Changing this file changes the function of every database the next time a store opens it:
-- keep its signature, and keep its answer the shape `BatchAnswer` in `execution.rs` parses.
--
-- One round trip per batch of state changes. `downbeat run` and `downbeat worker` record the
-- ends of attempts and their next claims as one batch, and the time from a task's end to its
-- dependent's start is mostly that batch's trips to the server: it was eight statements
-- (begin, finishes, ledger, prerequisites, claims, new attempts, events, commit). Called as a
-- single statement outside a transaction block, this function is its own transaction, and
-- the event lock (taken last, held to the commit) no longer waits on a client round trip.
--
-- Input: {"now", "holder", "lease_until", "actor", "session", "lock", "channel", "wake",
--   "finishes": [{"seq", "id", "epoch", "status", "result", "finished", "not_before",
--                 "attempt_id", "outcome", "exit_code", "error", "summary", "tp", "tc", "detail",
--                 "after", "artifacts": [{"path", "size", "sha256"}]}],
--   "claims": [{"seq", "id", "executor", "after": position in "afters"}],
--   "afters": [[seq]]: the distinct lists of prerequisites of the claims,
--   "holds_seen": the last hold number the claimer knew of, or null,
--   "caps": [{"cap", "roles": [role]}]: running tasks of these roles, whoever holds them,
--           stay within the cap (optional), "cap_lock": the lock class serialising them}
-- Output: {"rejected": [seq], "claimed": [{"seq", "epoch", "attempt_id", "number"}],
--          "not_claimed": [seq], "held": a later hold refused every claim,
--          "capped": [seq] refused for a cap (also in not_claimed),
--          "last": seq of the last event or null}
CREATE OR REPLACE FUNCTION downbeat_commit_batch(p jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $fn$
DECLARE
    v_now      bigint := (p->>'now')::bigint;
    v_holder   text := p->>'holder';
    v_until    bigint := (p->>'lease_until')::bigint;
    v_fin      jsonb := coalesce(p->'finishes', '[]');
    v_cl       jsonb := coalesce(p->'claims', '[]');
    v_afters   jsonb := coalesce(p->'afters', '[]');
    v_seqs     bigint[];
    v_ids      bigint[];
    v_accepted bigint[] := '{}';
    v_rejected bigint[] := '{}';
    v_after    bigint[];
    v_open     bigint[] := '{}';
    v_wanted   bigint[] := '{}';
    v_refused  bigint[] := '{}';
    v_got      bigint[] := '{}';
    v_claimed  jsonb := '[]';
    v_events   jsonb := '[]';
    v_claim_ev jsonb := '[]';
    v_last     bigint;
    v_held     boolean := false;
    v_caps     jsonb := coalesce(p->'caps', '[]');
    v_used     int[];
    v_keep     bigint[];
    v_capped   bigint[] := '{}';
    v_group    int;
    v_claim    record;
BEGIN
    -- Caps are counted over every holder: claimers that check caps take turns, from before
    -- they lock any row (so no claimer holding rows waits for the turn of one that waits for
    -- those rows) to their commit, and each counts the running tasks the previous committed.
    IF jsonb_array_length(v_cl) > 0 AND jsonb_array_length(v_caps) > 0 THEN
        PERFORM pg_advisory_xact_lock((p->>'cap_lock')::int, hashtext(current_schema()));
    END IF;

    IF jsonb_array_length(v_fin) > 0 THEN
        v_seqs := ARRAY(SELECT (f->>'seq')::bigint FROM jsonb_array_elements(v_fin) f);
        v_ids := ARRAY(SELECT (f->>'attempt_id')::bigint FROM jsonb_array_elements(v_fin) f);
        -- The fencing check: only a running task still under the claim's epoch is changed.
        -- `= ANY` keeps the planner on the primary key when statistics are stale, and
        -- `IS NOT DISTINCT FROM` keeps it off the status indexes.
        WITH u AS (
            UPDATE tasks SET status = v.status, result = v.result, finished_at = v.finished,
                updated_at = v_now, not_before = v.not_before, lease_holder = NULL,
                lease_expires = NULL
            FROM jsonb_to_recordset(v_fin) AS v(seq bigint, epoch bigint, status text,
                 result text, finished bigint, not_before bigint)
            WHERE tasks.seq = ANY(v_seqs) AND tasks.seq = v.seq
              AND tasks.status IS NOT DISTINCT FROM 'running' AND tasks.lease_epoch = v.epoch
            RETURNING tasks.seq)
        SELECT coalesce(array_agg(seq), '{}') INTO v_accepted FROM u;

        -- The ledger records every attempt's end, accepted or not.
        UPDATE attempts SET ended_at = v_now,
            outcome = CASE WHEN v.seq = ANY(v_accepted) THEN v.outcome
                           ELSE v.outcome || ' (lease lost)' END,
            exit_code = v.exit_code, error = v.error, summary = v.summary,
            tokens_prompt = v.tp, tokens_completion = v.tc, detail = v.detail
        FROM jsonb_to_recordset(v_fin) AS v(attempt_id bigint, seq bigint, outcome text,
             exit_code bigint, error text, summary text, tp bigint, tc bigint, detail text)
        WHERE attempts.id = ANY(v_ids) AND attempts.id = v.attempt_id
          AND attempts.ended_at IS NULL;

        SELECT coalesce(array_agg((f->>'seq')::bigint ORDER BY o), '{}') INTO v_rejected
        FROM jsonb_array_elements(v_fin) WITH ORDINALITY AS x(f, o)
        WHERE NOT (f->>'seq')::bigint = ANY(v_accepted);

        INSERT INTO artifacts(task_seq, path, size, sha256, created_at, attempt_id)
        SELECT (f->>'seq')::bigint, a->>'path', (a->>'size')::bigint, a->>'sha256', v_now,
               (f->>'attempt_id')::bigint
        FROM jsonb_array_elements(v_fin) WITH ORDINALITY AS x(f, o),
             jsonb_array_elements(coalesce(f->'artifacts', '[]')) WITH ORDINALITY AS y(a, o2)
        WHERE (f->>'seq')::bigint = ANY(v_accepted)
        ORDER BY o, o2;

        SELECT coalesce(jsonb_agg(jsonb_build_object('entity', f->>'id', 'task_seq', f->'seq',
                   'before', '{"status": "running"}'::jsonb, 'after', f->'after') ORDER BY o), '[]')
        INTO v_events
        FROM jsonb_array_elements(v_fin) WITH ORDINALITY AS x(f, o)
        WHERE (f->>'seq')::bigint = ANY(v_accepted);
    END IF;

    -- A hold the claimer had not seen when it chose: no claim is taken. (A hold committed
    -- while this call runs is not seen: the two overlap, and either order is a valid one.)
    IF jsonb_array_length(v_cl) > 0 AND jsonb_typeof(p->'holds_seen') = 'number' THEN
        SELECT coalesce((value::jsonb->>'last')::bigint, 0) > (p->>'holds_seen')::bigint
        INTO v_held FROM meta WHERE key = 'holds';
        v_held := coalesce(v_held, false);
        IF v_held THEN
            v_refused := ARRAY(SELECT (c->>'seq')::bigint
                               FROM jsonb_array_elements(v_cl) WITH ORDINALITY AS x(c, o) ORDER BY o);
        END IF;
    END IF;

    IF jsonb_array_length(v_cl) > 0 AND NOT v_held THEN
        -- Conditional claims: refuse those whose prerequisites are not all finished. The
        -- prerequisites are share-locked so they cannot be reopened before this commits.
        v_after := ARRAY(SELECT DISTINCT a::bigint
                         FROM jsonb_array_elements(v_afters) l, jsonb_array_elements_text(l) a);
        IF cardinality(v_after) > 0 THEN
            SELECT coalesce(array_agg(seq) FILTER (WHERE status NOT IN ('completed', 'skipped')), '{}')
            INTO v_open
            FROM (SELECT seq, status FROM tasks WHERE seq = ANY(v_after) ORDER BY seq FOR SHARE) t;
        END IF;
        SELECT coalesce(array_agg(s ORDER BY o) FILTER (WHERE NOT blocked), '{}'),
               coalesce(array_agg(s ORDER BY o) FILTER (WHERE blocked), '{}')
        INTO v_wanted, v_refused
        FROM (SELECT (c->>'seq')::bigint AS s, o,
                     EXISTS (SELECT 1
                             FROM jsonb_array_elements_text(v_afters->((c->>'after')::int)) a
                             WHERE a::bigint = ANY(v_open)) AS blocked
              FROM jsonb_array_elements(v_cl) WITH ORDINALITY AS x(c, o)) q;

        IF cardinality(v_wanted) > 0 AND jsonb_array_length(v_caps) > 0 THEN
            -- Claims in order, each within its group's cap next to the running tasks.
            SELECT array_agg((SELECT count(*) FROM tasks t
                              WHERE t.status = 'running' AND NOT t.archived
                                AND t.role IN (SELECT jsonb_array_elements_text(c->'roles')))::int
                             ORDER BY o)
            INTO v_used FROM jsonb_array_elements(v_caps) WITH ORDINALITY AS x(c, o);
            v_keep := '{}';
            FOR v_claim IN SELECT w.s, t.role FROM unnest(v_wanted) WITH ORDINALITY AS w(s, o)
                           LEFT JOIN tasks t ON t.seq = w.s ORDER BY w.o LOOP
                v_group := NULL;
                SELECT o::int INTO v_group FROM jsonb_array_elements(v_caps) WITH ORDINALITY AS x(c, o)
                WHERE c->'roles' ? v_claim.role ORDER BY o LIMIT 1;
                IF v_group IS NULL THEN
                    v_keep := v_keep || v_claim.s;
                ELSIF v_used[v_group] < (v_caps->(v_group - 1)->>'cap')::int THEN
                    v_used[v_group] := v_used[v_group] + 1;
                    v_keep := v_keep || v_claim.s;
                ELSE
                    v_capped := v_capped || v_claim.s;
                END IF;
            END LOOP;
            v_wanted := v_keep;
            v_refused := v_refused || v_capped;
        END IF;

        IF cardinality(v_wanted) > 0 THEN
            -- Candidates locked by another claimer are skipped, not waited for: they are
            -- that claimer's. Leases run on the database's clock.
            WITH cand AS (
                SELECT seq FROM tasks
                WHERE seq = ANY(v_wanted) AND status IS NOT DISTINCT FROM 'pending' AND NOT archived
                  AND (not_before IS NULL OR not_before <= v_now)
                ORDER BY seq FOR UPDATE SKIP LOCKED),
            clock AS (SELECT (extract(epoch from clock_timestamp()) * 1000)::bigint AS now),
            upd AS (
                UPDATE tasks SET status = 'running', started_at = v_now, finished_at = NULL,
                    updated_at = v_now, lease_holder = v_holder,
                    lease_expires = clock.now + (v_until - v_now), lease_skew = clock.now - v_now,
                    lease_epoch = tasks.lease_epoch + 1, attempts = tasks.attempts + 1,
                    not_before = NULL, result = NULL
                FROM cand, clock WHERE tasks.seq = cand.seq
                RETURNING tasks.seq, tasks.lease_epoch, tasks.attempts),
            req AS (
                SELECT (c->>'seq')::bigint AS seq, c->>'id' AS id, c->>'executor' AS executor, o
                FROM jsonb_array_elements(v_cl) WITH ORDINALITY AS x(c, o)),
            ins AS (
                INSERT INTO attempts(task_seq, number, epoch, worker, executor, started_at)
                SELECT upd.seq, upd.attempts, upd.lease_epoch, v_holder, req.executor, v_now
                FROM upd JOIN req ON req.seq = upd.seq
                ORDER BY req.o
                RETURNING id, task_seq, number, epoch)
            SELECT coalesce(array_agg(ins.task_seq), '{}'),
                   coalesce(jsonb_agg(jsonb_build_object('seq', ins.task_seq, 'epoch', ins.epoch,
                       'attempt_id', ins.id, 'number', ins.number) ORDER BY req.o), '[]'),
                   coalesce(jsonb_agg(jsonb_build_object('entity', req.id, 'task_seq', ins.task_seq,
                       'before', '{"status": "pending"}'::jsonb,
                       'after', jsonb_build_object('status', 'running', 'attempt', ins.id,
                           'epoch', ins.epoch, 'holder', v_holder, 'executor', req.executor))
                       ORDER BY req.o), '[]')
            INTO v_got, v_claimed, v_claim_ev
            FROM ins JOIN req ON req.seq = ins.task_seq;
            v_events := v_events || v_claim_ev;
            v_refused := v_refused || ARRAY(SELECT s FROM unnest(v_wanted) WITH ORDINALITY AS w(s, o)
                                            WHERE NOT s = ANY(v_got) ORDER BY o);
        END IF;
    END IF;

    -- The event lock is taken last and held to the commit, so sequence numbers follow commit
    -- order. It is a one-row input of the insert: held before any number is drawn.
    IF jsonb_array_length(v_events) > 0 THEN
        WITH lock AS MATERIALIZED (
                SELECT pg_advisory_xact_lock((p->>'lock')::int, hashtext(current_schema()))),
             ins AS (
                INSERT INTO events(at, actor, session_id, action, entity, task_seq, before, after)
                SELECT v_now, p->>'actor', (p->>'session')::bigint, 'task.status', e->>'entity',
                       (e->>'task_seq')::bigint, e->'before', e->'after'
                FROM lock, jsonb_array_elements(v_events) WITH ORDINALITY AS x(e, o)
                ORDER BY o
                RETURNING seq)
        SELECT max(seq) INTO v_last FROM ins;
        IF coalesce((p->>'wake')::boolean, true) THEN
            PERFORM pg_notify(p->>'channel', v_last::text);
        END IF;
    END IF;

    RETURN jsonb_build_object('rejected', to_jsonb(v_rejected), 'claimed', v_claimed,
                              'not_claimed', to_jsonb(v_refused), 'held', v_held,
                              'capped', to_jsonb(v_capped), 'last', v_last);
END
$fn$;
