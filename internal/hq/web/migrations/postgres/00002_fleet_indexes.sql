-- +goose Up
-- The fleet page counts the terminals its filter matches on every refresh.
-- A terminal's row is wide (device keys, the last status as received), so
-- a count that has to read rows is slow at 100,000 terminals; these
-- covering indexes let them read narrow index entries instead: the
-- connection filter (its pages walk the same index in serial order) and
-- the search (serial, TID, MID, merchant name), grouped by state.
-- BenchmarkFleetPage measures both.
CREATE INDEX bo_terminals_online ON terminals (online, serial, state);
CREATE INDEX bo_terminals_search ON terminals (state, serial, tid, mid, merchant_name);

-- +goose Down
DROP INDEX bo_terminals_search;
DROP INDEX bo_terminals_online;
