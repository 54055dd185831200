-- The leader's fencing token as PostgreSQL last saw it, one row per leadership (the Redis
-- key of its lease: hubs on other key prefixes lead apart). A leader's transaction raises
-- its row to the leader's token and takes it FOR SHARE before it writes (hub.db.fence): a
-- stepped-down leader that wakes up late, with a lower token, cannot commit a write.
CREATE TABLE leader_fence (
    lease text PRIMARY KEY,
    token bigint NOT NULL
);
