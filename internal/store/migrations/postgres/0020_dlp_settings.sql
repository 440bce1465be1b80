-- Per-account DLP settings (issue 5 item 1, account-editable parts):
-- clinical terms and medical record number formats added to the built-in
-- detectors, and the score threshold. No row: dlp's defaults.
CREATE TABLE dlp_settings (
    account_id   TEXT PRIMARY KEY REFERENCES accounts(id),
    terms        TEXT NOT NULL,     -- JSON array of strings
    mrn_patterns TEXT NOT NULL,     -- JSON array of {name, pattern, anywhere}
    threshold    DOUBLE PRECISION NOT NULL,  -- 0: dlp's default (0.5)
    version      BIGINT NOT NULL,    -- bumped on every replace; keys the scanner cache
    updated_at   BIGINT NOT NULL
);
