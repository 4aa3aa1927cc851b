//! Versioned schema migrations, applied in order inside one transaction each and recorded in
//! SQLite's `user_version`. A migration is never edited once released: a change is a new one.

/// The schema, one entry per version (index 0 brings an empty database to version 1).
pub const MIGRATIONS: &[&str] = &[
    // v1: probes and raw results.
    r#"
    CREATE TABLE probes (
        probe_id         TEXT PRIMARY KEY,
        region           TEXT NOT NULL,
        cert_fingerprint TEXT,
        enrolled_ms      INTEGER NOT NULL,
        revoked_ms       INTEGER,
        last_seen_ms     INTEGER,
        clock_offset_ms  REAL
    ) STRICT;

    -- One row per check run. The identity columns come from the probe's certificate, never
    -- from the payload; `record` keeps the whole CheckResult (MessagePack) for replays.
    CREATE TABLE results (
        probe_id     TEXT    NOT NULL,
        seq          INTEGER NOT NULL,
        check_id     TEXT    NOT NULL,
        region       TEXT    NOT NULL,
        scheduled_ms INTEGER NOT NULL,
        started_ms   INTEGER NOT NULL,
        received_ms  INTEGER NOT NULL,
        ok           INTEGER NOT NULL,
        error_class  TEXT,
        dns_us       INTEGER,
        connect_us   INTEGER,
        tls_us       INTEGER,
        ttfb_us      INTEGER,
        transfer_us  INTEGER,
        total_us     INTEGER NOT NULL,
        status       INTEGER,
        record       BLOB    NOT NULL,
        PRIMARY KEY (probe_id, seq)
    ) STRICT, WITHOUT ROWID;

    CREATE INDEX results_by_started ON results (started_ms);
    CREATE INDEX results_by_check ON results (check_id, region, started_ms);
    "#,
    // v2: one-time enrolment tokens, stored as SHA-256 hashes only.
    r#"
    CREATE TABLE enrollment_tokens (
        token_hash TEXT PRIMARY KEY,
        region     TEXT NOT NULL,
        created_ms INTEGER NOT NULL,
        expires_ms INTEGER NOT NULL,
        used_ms    INTEGER,
        used_by    TEXT
    ) STRICT;
    "#,
    // v3: per-minute rollups: one mergeable DDSketch of a phase's durations (microseconds) per
    // (check, region, phase, minute). Kept far longer than raw results.
    r#"
    CREATE TABLE rollups (
        check_id  TEXT    NOT NULL,
        region    TEXT    NOT NULL,
        phase     TEXT    NOT NULL,
        minute_ms INTEGER NOT NULL,
        count     INTEGER NOT NULL,
        sketch    BLOB    NOT NULL,
        PRIMARY KEY (check_id, region, phase, minute_ms)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX rollups_by_minute ON rollups (minute_ms);
    "#,
    // v4: the assignment last issued to each probe: its version (per probe, only ever rising),
    // a digest of its content (slot, slots, checks) to tell a change from a re-computation,
    // and the check ids of it and of the one before (results of either are accepted).
    r#"
    CREATE TABLE assignments (
        probe_id    TEXT    PRIMARY KEY,
        version     INTEGER NOT NULL,
        digest      TEXT    NOT NULL,
        checks      TEXT    NOT NULL,
        prev_checks TEXT    NOT NULL,
        issued_ms   INTEGER NOT NULL
    ) STRICT, WITHOUT ROWID;
    "#,
    // v5: burst runs told from scheduled ones. `burst_id` is the `BurstTag` the probe sent with
    // the result (the coordinator's id of the burst; the u64 stored as the i64 with the same
    // bits), NULL for a scheduled run and for every row stored before v5, which were all
    // counted as scheduled. A burst's runs are its probe's rows with that id in `seq` order;
    // the wire carries no run index, so none is stored. The partial index serves "the results
    // of burst N" and costs nothing for scheduled rows.
    r#"
    ALTER TABLE results ADD COLUMN burst_id INTEGER;
    CREATE INDEX results_by_burst ON results (burst_id) WHERE burst_id IS NOT NULL;
    "#,
    // v6: incidents as the detection engine reports them, one row each, rewritten on every
    // transition. `id` is the engine's id plus the highest id stored when its run began (see
    // `store::incidents`), so ids never collide across restarts. `state` is confirmed, paged,
    // resolved, or interrupted (open when an earlier run stopped). Regions, targets and ASNs
    // are JSON arrays; evidence and the timeline JSON arrays of objects.
    r#"
    CREATE TABLE incidents (
        id          INTEGER PRIMARY KEY,
        class       TEXT    NOT NULL,
        state       TEXT    NOT NULL,
        severity    TEXT    NOT NULL,
        regions     TEXT    NOT NULL,
        targets     TEXT    NOT NULL,
        asns        TEXT    NOT NULL,
        probe       TEXT,
        edge        TEXT,
        onset_ms    INTEGER NOT NULL,
        detected_ms INTEGER NOT NULL,
        paged_ms    INTEGER,
        resolved_ms INTEGER,
        explanation TEXT    NOT NULL,
        evidence    TEXT    NOT NULL,
        timeline    TEXT    NOT NULL,
        updated_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX incidents_open ON incidents (state) WHERE state IN ('confirmed', 'paged');
    "#,
    // v7: each probe's network as last learnt when it connected (GeoIP of its address, the
    // operator's pin on top), so that detection's quorums count independent networks from
    // the first minute after a restart, and `coordinator probe list` shows it. `far_km` is
    // set when the address geolocates more than 2,500 km from the probe's region.
    r#"
    ALTER TABLE probes ADD COLUMN address TEXT;
    ALTER TABLE probes ADD COLUMN asn INTEGER;
    ALTER TABLE probes ADD COLUMN as_org TEXT;
    ALTER TABLE probes ADD COLUMN country TEXT;
    ALTER TABLE probes ADD COLUMN latitude REAL;
    ALTER TABLE probes ADD COLUMN longitude REAL;
    ALTER TABLE probes ADD COLUMN far_km REAL;
    ALTER TABLE probes ADD COLUMN network_ms INTEGER;
    "#,
    // v8: member messages (`store::messages`): the coordinator's drafts per incident and stage
    // (`auto` = 1, at most one per pair), people's edits, approvals and publications.
    r#"
    CREATE TABLE messages (
        id           INTEGER PRIMARY KEY,
        incident_id  INTEGER NOT NULL,
        stage        TEXT    NOT NULL,
        auto         INTEGER NOT NULL,
        title        TEXT    NOT NULL,
        body         TEXT    NOT NULL,
        regions      TEXT    NOT NULL,
        state        TEXT    NOT NULL,
        drafted_ms   INTEGER NOT NULL,
        edited_ms    INTEGER,
        edited_by    TEXT,
        approved_ms  INTEGER,
        approved_by  TEXT,
        published_ms INTEGER,
        published_by TEXT
    ) STRICT;
    CREATE UNIQUE INDEX messages_offered ON messages (incident_id, stage) WHERE auto = 1;
    CREATE INDEX messages_published ON messages (published_ms) WHERE state = 'published';
    "#,
    // v9: staff accounts of the web UI and API (`store::users`): Argon2id PHC strings, roles,
    // and sessions (browser logins and API tokens alike) keyed by the SHA-256 of their secret,
    // so a copy of the database opens no live session.
    r#"
    CREATE TABLE users (
        name        TEXT    PRIMARY KEY,
        role        TEXT    NOT NULL,
        password    TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        changed_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE TABLE sessions (
        secret_hash TEXT    PRIMARY KEY,
        user_name   TEXT    NOT NULL REFERENCES users (name) ON DELETE CASCADE,
        kind        TEXT    NOT NULL,
        label       TEXT,
        csrf        TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        expires_ms  INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX sessions_by_user ON sessions (user_name);
    CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
    "#,
    // v10: maintenance windows made through the API or the CLI (`store::maintenance`; those of
    // `coordinator.toml` live in the file), each as the JSON it was validated from; and what
    // windows had to do with each incident (`store::incidents`: JSON, `{}` when nothing).
    r#"
    CREATE TABLE maintenance (
        id          TEXT    PRIMARY KEY,
        spec        TEXT    NOT NULL,
        created_ms  INTEGER NOT NULL,
        created_by  TEXT    NOT NULL
    ) STRICT;
    ALTER TABLE incidents ADD COLUMN maintenance TEXT NOT NULL DEFAULT '{}';
    "#,
    // v11: people's notes on an incident (`store::notes`): what was done and when, for the
    // timeline and the post-mortem. Only ever added.
    r#"
    CREATE TABLE incident_notes (
        id           INTEGER PRIMARY KEY,
        incident_id  INTEGER NOT NULL,
        at_ms        INTEGER NOT NULL,
        author       TEXT    NOT NULL,
        text         TEXT    NOT NULL,
        created_ms   INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX incident_notes_by_incident ON incident_notes (incident_id, at_ms);
    "#,
];

/// The schema version this build writes.
pub fn latest() -> u32 {
    u32::try_from(MIGRATIONS.len()).expect("fewer than 2^32 migrations")
}
