"""Where a consumer-group worker delivers events: an HTTP sink (CloudEvents over HTTP) or a Python
handler, with retries, backoff and a dead-letter stream for events that never get through."""
