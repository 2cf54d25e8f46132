"""marshmallow schemas of analytics's RPC inputs and outputs."""
