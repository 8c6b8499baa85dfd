-- +goose Up
-- jobs.signed: how many of a signing job's commands have the signatures
-- they require, kept as each batch of signatures is stored, so that
-- deciding whether the job may run costs a batch its own size, not the
-- job's. Filled for the jobs that exist.
ALTER TABLE jobs ADD COLUMN signed INTEGER NOT NULL DEFAULT 0;
UPDATE jobs SET signed = (SELECT COUNT(*) FROM commands c WHERE c.job_id = jobs.id
    AND c.required_sigs <= (SELECT COUNT(*) FROM command_signatures s WHERE s.cmd_id = c.id));

-- +goose Down
ALTER TABLE jobs DROP COLUMN signed;
