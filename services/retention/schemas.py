"""marshmallow schemas of retention's RPC inputs and outputs."""
