-- The example shop's own tables (the application's, beside Sluice's schema).

CREATE SCHEMA IF NOT EXISTS shop;

CREATE TABLE IF NOT EXISTS shop.stock (
    sku text PRIMARY KEY,
    available integer NOT NULL CHECK (available >= 0)
);

-- One reservation per order: reserving twice (a retried step) finds the first.
CREATE TABLE IF NOT EXISTS shop.reservations (
    order_id text PRIMARY KEY,
    sku text NOT NULL REFERENCES shop.stock (sku),
    quantity integer NOT NULL CHECK (quantity > 0),
    idempotency_key text NOT NULL
);

CREATE TABLE IF NOT EXISTS shop.charges (
    order_id text PRIMARY KEY,
    amount_cents integer NOT NULL,
    status text NOT NULL CHECK (status IN ('charged', 'refunded'))
);

CREATE TABLE IF NOT EXISTS shop.shipments (
    order_id text PRIMARY KEY,
    tracking_number text NOT NULL,
    idempotency_key text NOT NULL
);

-- The order-summary projection's read model.
CREATE TABLE IF NOT EXISTS shop.order_summary (
    order_id text PRIMARY KEY,
    customer text NOT NULL,
    sku text NOT NULL,
    quantity integer NOT NULL,
    amount_cents integer NOT NULL,
    status text NOT NULL,
    inventory text,
    payment text,
    tracking_number text
);
