-- Every token issued to an account before this moment is void: set by logout-all and by a
-- password change (the per-token revocations of logout stay in revoked_tokens).
ALTER TABLE users ADD COLUMN tokens_after timestamptz;
