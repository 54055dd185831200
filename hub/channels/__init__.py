"""Live event channels over WebSocket: snapshot and conflated deltas with seq, per process.

``fanout.Channels`` is the process's channel hub (one Redis pub/sub link, the tick and
housekeeping) and ``admin.AdminFeed`` the admin metrics feed; both are members of the
app's hub (``hub.context.AppHub``), started and stopped by the lifespan. The package sits
below the hub: it imports nothing that imports ``hub.context`` (the endpoints that need
the hub and authentication are ``hub.api.sockets``). See docs/channels.md for the protocol.
"""
