-- The auth policy can switch OAuth bearer tokens off like the other schemes.
ALTER TABLE account_auth_policy ADD COLUMN allow_bearer BOOLEAN NOT NULL DEFAULT TRUE;
