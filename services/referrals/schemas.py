"""marshmallow schemas of referrals's RPC inputs and outputs."""
