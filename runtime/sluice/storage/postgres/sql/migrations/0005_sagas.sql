-- 0005: sagas (issue 7). One row per saga instance (optimistic concurrency on `version`) and its
-- history; see docs/sagas.md.

CREATE TABLE saga_instances (
    saga_id uuid PRIMARY KEY,
    saga_name text NOT NULL,
    correlation_id text NOT NULL,
    status text NOT NULL
        CHECK (status IN ('running', 'completed', 'compensating', 'compensated', 'failed')),
    current_step text,
    progress jsonb NOT NULL,
    context jsonb NOT NULL,
    version bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT saga_instances_correlation_unique UNIQUE (saga_name, correlation_id)
);

CREATE INDEX saga_instances_by_status ON saga_instances (status, created_at);

CREATE TABLE saga_history (
    entry_id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    saga_id uuid NOT NULL REFERENCES saga_instances (saga_id) ON DELETE CASCADE,
    version bigint NOT NULL,
    kind text NOT NULL,
    step text,
    attempt integer,
    detail text,
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX saga_history_by_saga ON saga_history (saga_id, entry_id);
