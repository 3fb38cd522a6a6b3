-- Identity: organizations, users, API keys and sessions. The spine's minimal `tenants` and
-- `api_keys` tables are replaced by the Organization aggregate (keys live in its stream).
DROP TABLE api_keys;
DROP TABLE tenants;

-- Uniqueness across aggregates (command side): one owner per value. See
-- event_store::reservation.
CREATE TABLE reservations (
    scope      text        NOT NULL,
    value      text        NOT NULL,
    tenant_id  uuid        NOT NULL,
    owner_id   uuid        NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, value)
);

-- Credentials, kept beside the log and never in an event (so never on the bus either): the
-- argon2id hash of a user's password and their TOTP secret. Events only say they changed.
CREATE TABLE user_credentials (
    user_id       uuid        PRIMARY KEY,
    password_hash text,
    totp_secret   text,
    -- The last 30-second TOTP step that signed in (a code works once).
    totp_last_step bigint,
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Web sessions: server-side state, not events. The cookie holds a random id; only its
-- SHA-256 is stored.
CREATE TABLE sessions (
    id_hash         bytea       PRIMARY KEY,
    user_id         uuid        NOT NULL,
    organization_id uuid,
    -- 'active', or 'mfa' while the second factor is awaited.
    stage           text        NOT NULL,
    csrf_token      text        NOT NULL,
    created_at      timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    expires_at      timestamptz NOT NULL,
    ip              text,
    user_agent      text
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

-- The organization a user last worked in, chosen again at their next login.
CREATE TABLE user_last_organization (
    user_id         uuid PRIMARY KEY,
    organization_id uuid NOT NULL
);

-- OpenID Connect sign-ins in flight: the state sent to the provider → the nonce expected back.
CREATE TABLE oidc_logins (
    state_hash bytea       PRIMARY KEY,
    nonce      text        NOT NULL,
    expires_at timestamptz NOT NULL
);

-- Brute-force protection: attempts per bucket (account or address) in the current window.
CREATE TABLE auth_throttle (
    bucket       text        PRIMARY KEY,
    window_start timestamptz NOT NULL,
    attempts     integer     NOT NULL
);

-- When each API key was last used (operational state, written at most once a minute per key).
CREATE TABLE api_key_usage (
    key_id          uuid        PRIMARY KEY,
    organization_id uuid        NOT NULL,
    last_used_at    timestamptz NOT NULL
);

-- Read model of the `organizations` projection: one row per organization, members,
-- invites and keys (never secrets) as JSON arrays.
CREATE TABLE organizations (
    tenant_id  uuid        NOT NULL,
    id         uuid        NOT NULL,
    name       text        NOT NULL,
    settings   jsonb       NOT NULL,
    members    jsonb       NOT NULL DEFAULT '[]',
    invites    jsonb       NOT NULL DEFAULT '[]',
    api_keys   jsonb       NOT NULL DEFAULT '[]',
    blocked    boolean     NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    version    bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX organizations_members_idx ON organizations USING gin (members jsonb_path_ops);

-- Read model of the `users` projection (no password hashes, no secrets).
CREATE TABLE users (
    tenant_id      uuid        NOT NULL,
    id             uuid        NOT NULL,
    email          text        NOT NULL,
    name           text,
    email_verified boolean     NOT NULL,
    totp_enabled   boolean     NOT NULL,
    has_password   boolean     NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    version        bigint      NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

-- Read model of the `audit_log` projection: who did what, when, from where, per organization.
CREATE TABLE audit_log (
    tenant_id       uuid        NOT NULL,
    tx_id           bigint      NOT NULL,
    global_position bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    actor           text,
    aggregate_type  text        NOT NULL,
    aggregate_id    uuid        NOT NULL,
    sequence        bigint      NOT NULL,
    event_type      text        NOT NULL,
    changed         text[]      NOT NULL DEFAULT '{}',
    ip              text,
    user_agent      text,
    correlation_id  uuid,
    request_id      text,
    PRIMARY KEY (tenant_id, tx_id, global_position)
);
CREATE INDEX audit_log_time_idx ON audit_log (tenant_id, recorded_at);
CREATE INDEX audit_log_actor_idx ON audit_log (tenant_id, actor, recorded_at);
