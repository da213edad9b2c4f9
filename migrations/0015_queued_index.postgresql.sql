-- The claim's candidates (app/store/execution_queue.py, hookrunner_claim on PostgreSQL): the
-- oldest queued executions of one trigger, in the claim's order (created_at, id). A partial
-- index holds only the queued rows, so a claim reads the first few entries however many
-- finished executions the trigger has. Before it, PostgreSQL walked executions_created from
-- the oldest row and filtered out every finished one whenever its statistics were stale (as
-- during a burst), and otherwise visited the dead 'queued' entries in
-- executions_trigger_status that every claim and finish leaves until vacuum.
CREATE INDEX executions_queued ON executions (trigger, created_at, id) WHERE status = 'queued';
