"""Who is talking and what they may do: principals, roles, keys and tokens.

The lowest layer that knows about identity: the transport (CURVE/ZAP), the
store (block tokens), the master (job ACLs) and the HTTP service (bearer
tokens) all map what a peer proved to a :class:`Principal` from here.
"""
