-- The example shop's named queries (loaded by shop/database.py).

-- name: set_stock
INSERT INTO shop.stock (sku, available) VALUES ($1, $2)
ON CONFLICT (sku) DO UPDATE SET available = excluded.available;

-- name: stock
SELECT available FROM shop.stock WHERE sku = $1;

-- name: lock_stock
SELECT available FROM shop.stock WHERE sku = $1 FOR UPDATE;

-- name: reservation
SELECT sku, quantity FROM shop.reservations WHERE order_id = $1;

-- name: take_stock
UPDATE shop.stock SET available = available - $2 WHERE sku = $1;

-- name: add_reservation
INSERT INTO shop.reservations (order_id, sku, quantity, idempotency_key) VALUES ($1, $2, $3, $4);

-- name: release_reservation
-- Deletes the reservation and gives its stock back in one statement; nothing when there is none.
WITH released AS (
    DELETE FROM shop.reservations WHERE order_id = $1 RETURNING sku, quantity
)
UPDATE shop.stock
   SET available = stock.available + released.quantity
  FROM released
 WHERE stock.sku = released.sku
RETURNING released.sku, released.quantity;

-- name: add_charge
INSERT INTO shop.charges (order_id, amount_cents, status) VALUES ($1, $2, 'charged')
ON CONFLICT (order_id) DO NOTHING;

-- name: refund_charge
UPDATE shop.charges SET status = 'refunded' WHERE order_id = $1 AND status = 'charged'
RETURNING amount_cents;

-- name: charge
SELECT amount_cents, status FROM shop.charges WHERE order_id = $1;

-- name: add_shipment
INSERT INTO shop.shipments (order_id, tracking_number, idempotency_key) VALUES ($1, $2, $3)
ON CONFLICT (order_id) DO NOTHING;

-- name: shipment
SELECT tracking_number FROM shop.shipments WHERE order_id = $1;

-- name: summary_placed
INSERT INTO shop.order_summary (order_id, customer, sku, quantity, amount_cents, status)
VALUES ($1, $2, $3, $4, $5, 'placed')
ON CONFLICT (order_id) DO NOTHING;

-- name: summary_inventory
UPDATE shop.order_summary SET inventory = $2, status = $3 WHERE order_id = $1;

-- name: summary_payment
UPDATE shop.order_summary SET payment = $2, status = coalesce($3, status) WHERE order_id = $1;

-- name: summary_shipped
UPDATE shop.order_summary SET tracking_number = $2, status = 'shipped' WHERE order_id = $1;

-- name: summaries
SELECT order_id, customer, sku, quantity, amount_cents, status, inventory, payment, tracking_number
  FROM shop.order_summary
 ORDER BY order_id;
