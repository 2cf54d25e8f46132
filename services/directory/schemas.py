"""marshmallow schemas of directory's RPC inputs and outputs."""
