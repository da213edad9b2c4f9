-- A fresh token per claim (fencing): heartbeats, the final write and the reaper match on
-- it, so a worker whose lease was taken over can never write over a newer attempt.
ALTER TABLE executions ADD COLUMN claim_token TEXT;
