-- Indexes the local broker's sqlite store (tansu 0.6.0) lacks, created idempotently before
-- the broker serves (io/src/kafka/tansu_store.rs, scripts/broker.sh). Each one turns a full
-- scan of a table that grows with the data into an index search on a per-record,
-- per-batch or per-partition path; docs/broker.md gives the plans and the figures.

-- Fetch reads each fetched record's headers (sql/header_fetch.sql, by topition and
-- offset), and deleting a record (retention, delete-topic) cascades to its headers through
-- the foreign key: without this index each of those scans the whole header table.
create index if not exists lambda_header_topition_offset on header (topition, offset_id);

-- Every produce batch reads and updates its partition's watermark, and every fetched
-- partition and ListOffsets(latest) reads it; the table has no key on topition.
create index if not exists lambda_watermark_topition on watermark (topition);

-- The stable offset (sql/watermark_select.sql, every fetched partition), the committed
-- end offset and the overlapping-transaction check at EndTxn look up txn_topition by
-- topition.
create index if not exists lambda_txn_topition_topition on txn_topition (topition);

-- InitProducerId with a transactional id and TxnOffsetCommit find the current transaction
-- by name.
create index if not exists lambda_txn_name on txn (name);

-- Deleting a topic deletes its partitions' committed offsets and producer details.
create index if not exists lambda_consumer_offset_topition on consumer_offset (topition);
create index if not exists lambda_producer_detail_topition on producer_detail (topition);
