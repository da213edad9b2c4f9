-- Claiming queued executions of one trigger in one round trip (app/store/execution_queue.py).
-- The three steps of a claim stay separate statements inside the function, so each sees a
-- fresh snapshot (READ COMMITTED, a VOLATILE function): the advisory lock serialises the
-- claimers of the trigger on every host, the count of running executions that follows sees
-- every claim committed before the lock was granted, and only the room left under
-- max_running is claimed. Candidates are chosen in a MATERIALIZED CTE (the LIMIT cannot turn
-- into a nested loop that updates more rows), SKIP LOCKED lets other claimers take other
-- rows, and every claim gets a fresh claim token (fencing).
CREATE FUNCTION hookrunner_claim(
    p_trigger TEXT, p_now TEXT, p_limit INTEGER, p_max_running INTEGER, p_owner TEXT
) RETURNS SETOF executions LANGUAGE plpgsql AS $$
DECLARE
    room INTEGER;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('claim:' || p_trigger));
    SELECT LEAST(p_limit, p_max_running - COUNT(*)) INTO room
    FROM executions WHERE trigger = p_trigger AND status = 'running';
    IF room <= 0 THEN
        RETURN;
    END IF;
    RETURN QUERY
    WITH candidates AS MATERIALIZED (
        SELECT id FROM executions
        WHERE trigger = p_trigger AND status = 'queued'
          AND (run_after IS NULL OR run_after <= p_now)
        ORDER BY created_at, id
        LIMIT room
        FOR UPDATE SKIP LOCKED
    )
    UPDATE executions SET status = 'running', owner = p_owner, heartbeat_at = p_now,
        started_at = p_now, status_changed_at = p_now,
        claim_token = md5(random()::text || executions.id)
    FROM candidates WHERE executions.id = candidates.id
    RETURNING executions.*;
END;
$$;
