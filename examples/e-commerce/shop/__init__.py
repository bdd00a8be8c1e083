"""The e-commerce example: an order-fulfilment saga (reserve inventory → charge payment → ship, a
declined payment releasing the reservation), a payment service that answers the saga, and an
order-summary projection. See ../README.md."""
