-- Housekeeping's index of attempts by time becomes a block-range index.
-- Attempts are written in time order, so each range of the table's pages
-- holds a narrow range of times and pruning still reads only what it
-- deletes; but a delivered message no longer writes an entry in a B-tree
-- (one of the ten index entries delivering a message wrote).
DROP INDEX attempts_by_time;
CREATE INDEX attempts_by_time ON attempts USING brin (started_at) WITH (autosummarize = on);
